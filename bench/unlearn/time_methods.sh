#!/usr/bin/env bash
# Wall time of `lethe unlearn` with the default method against `--method published` (the command's
# default until the erasure method replaced it) on the sample models, same data and class, no --test
# (evaluation is the same for both and is left out). Prints the median of RUNS runs of each and
# the ratio default ÷ published. BASELINE=/path/to/lethe (a binary built at an earlier commit, e.g.
# a1ae5bf, where the goal was set) adds that binary's default and published times, and the ratio of
# today's default to its published time. Run it on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-3}
CLASS=${CLASS:-4}
DATA=${DATA:-samples/fashion_train.npz}
out=${OUT:-.build/bench-time}
mkdir -p "$out"
swift build -c release --product lethe >&2
lethe=.build/release/lethe

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
measure() {  # model flags...
    local model=$1; shift
    for _ in $(seq "$RUNS"); do
        local start end
        start=$(date +%s.%N)
        "${binary:-$lethe}" unlearn "$model" --data "$DATA" --forget "$CLASS" -o "$out/forgot.onnx" "$@" >/dev/null 2>&1
        end=$(date +%s.%N)
        awk -v a="$start" -v b="$end" 'BEGIN { print b - a }'
    done | median
}
printf "%-22s %12s %12s %8s\n" model "default s" "published s" ratio
for model in samples/fashion_cnn.onnx samples/fashion_vit.onnx; do
    d=$(measure "$model")
    p=$(measure "$model" --method published)
    printf "%-22s %12.2f %12.2f %8.2f\n" "$(basename "$model")" "$d" "$p" "$(awk -v a="$d" -v b="$p" 'BEGIN { print a / b }')"
    if [ -n "${BASELINE:-}" ]; then
        bd=$(binary=$BASELINE measure "$model")
        bp=$(binary=$BASELINE measure "$model" --method published)
        printf "%-22s %12.2f %12.2f %8.2f  (baseline binary; ratio = today's default / baseline published)\n" \
            "  baseline" "$bd" "$bp" "$(awk -v a="$d" -v b="$bp" 'BEGIN { print a / b }')"
    fi
done
