#!/usr/bin/env bash
# Formats the Swift sources with the toolchain's `swift format` and the repository's .swift-format
# (4-space indent, 120 columns, rules chosen to match the code as written).
#   scripts/format.sh          rewrite Sources, Tests and Fuzz in place
#   scripts/format.sh --lint   only report what would change (exit status 1 when anything would)
# Generated code (Sources/LetheONNX/Generated) is left alone: protoc-gen-swift owns it.
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -d '' files < <(find Sources Tests Fuzz -name '*.swift' -not -path 'Sources/LetheONNX/Generated/*' -print0 | sort -z)

case "${1:-}" in
    --lint) exec swift format lint --strict --parallel --configuration .swift-format "${files[@]}" ;;
    "") exec swift format format --in-place --parallel --configuration .swift-format "${files[@]}" ;;
    *) echo "usage: $0 [--lint]" >&2; exit 2 ;;
esac
