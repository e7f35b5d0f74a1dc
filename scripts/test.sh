#!/usr/bin/env bash
# Runs the whole test suite: installs what is missing (system libraries, the Python reference
# libraries in .build/venv, the ONNX backend node tests), builds, and runs every test target.
set -euo pipefail
cd "$(dirname "$0")/.."
# The sources are as scripts/format.sh leaves them (.swift-format); run it to fix what this reports.
scripts/format.sh --lint
scripts/install-deps.sh --python
if [ -x formats/onnx-backend/fetch.sh ]; then formats/onnx-backend/fetch.sh; fi
export LETHE_PYTHON="$PWD/.build/venv/bin/python3"
swift build --build-tests
swift test "$@"
# The runtime and unlearning tests again under the thread sanitizer (separate build in .build/tsan).
scripts/tsan.sh
if [ -z "${LETHE_SKIP_FUZZ:-}" ]; then scripts/fuzz.sh "${LETHE_FUZZ_SECONDS:-15}"; fi  # libFuzzer + ASan, ~1 min (scripts/fuzz.sh)
