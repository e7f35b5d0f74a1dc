#!/usr/bin/env bash
# Runs the runtime and unlearning tests, and the parallel image-folder reading, under the thread
# sanitizer (a separate build in .build/tsan, so the normal build cache is untouched). Any race
# report fails the run.
# Usage: scripts/tsan.sh [extra swift test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=.build/tsan
swift build --build-tests --sanitize thread --scratch-path "$scratch"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# halt_on_error=0 lets every race print before the count below fails the run.
set +e
TSAN_OPTIONS="halt_on_error=0 second_deadlock_stack=1 ${TSAN_OPTIONS:-}" \
    swift test --sanitize thread --scratch-path "$scratch" --skip-build \
    --filter 'LetheRuntimeTests|LetheUnlearnTests|LazyImageSamplesTests|ImageFolderReferenceTests' "$@" >"$log" 2>&1
status=$?
set -e
grep -E "Executed [0-9]+ tests|passed, |error:|ThreadSanitizer" "$log" | tail -20 || true
races=$(grep -c "WARNING: ThreadSanitizer" "$log" || true)
echo "thread sanitizer: ${races} race report(s), tests exit ${status}"
[ "$races" -eq 0 ] && [ "$status" -eq 0 ]
