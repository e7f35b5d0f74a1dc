#!/usr/bin/env bash
# ImageNet-size `lethe unlearn --method published` beside the PyTorch reference (reference_bench.py) on
# the same job: torchvision ResNet-18 and ViT-B/16 at 224² (seeded random weights from
# bench/runtime/make_models.py), 1,000 seeded random images (images224.npz: 100 per class 0..9),
# forget class 3, S = 900 (900 retain + 100 forget), α_r = 100, α_f = 3, same thread count.
#
# Rows per layer: the reference keeps activation matrices, so it runs with the published code's cap of
# 10,000 rows per layer and side (ROWS). Lethe runs that job twice: with `--rows ROWS` (the same budget:
# 12 positions or tokens per retain image, 100 per forget image, ≈ 10,000 rows per side), and with
# POSITIONS = ROWS / 100 per image, at least that job (the same 10,000 forget rows, 9× the reference's
# retain rows). FULL=1 adds Lethe's default (1,024 positions per image, every token), a job the
# reference cannot hold in memory. REUSE_REFERENCE=1 reads the reference's figures
# from the last run's log instead of running it again (it takes 10+ minutes per model).
# PRECISION=bfloat16 runs Lethe with `--precision bfloat16` and the reference under
# `torch.autocast(bfloat16)` (`--autocast bfloat16`), and also prints each Lethe job's speed-up over
# the float32 reference when that one's log is there.
#
#   PYTHON=/work/pyenv/bin/python bench/unlearn/imagenet/run.sh        # MODELS="resnet18_224 vit_b16"
# LETHE=/path/to/lethe times that binary instead of building .build/release/lethe.
set -euo pipefail
cd "$(dirname "$0")/../../.."
PYTHON=${PYTHON:-python3}
THREADS=${THREADS:-2}
PRECISION=${PRECISION:-float32}
case $PRECISION in float32) tag="" autocast=none ;; bfloat16) tag="-bfloat16" autocast=bfloat16 ;; *) echo "PRECISION is float32 or bfloat16" >&2; exit 2 ;; esac
ROWS=${ROWS:-10000}
POSITIONS=$((ROWS / 100))
out=${OUT:-.build/bench-unlearn}
models=.build/bench-models
mkdir -p "$out"
[ -x /usr/bin/time ] || { echo "install GNU time (apt-get install time)" >&2; exit 2; }
if [ -z "${LETHE:-}" ]; then swift build -c release --product lethe >&2; fi
lethe=${LETHE:-.build/release/lethe}
data=$("$PYTHON" bench/unlearn/imagenet/make_images.py --count 1000)
for model in ${MODELS:-resnet18_224 vit_b16}; do
    [ -f "$models/$model.onnx" ] || "$PYTHON" bench/runtime/make_models.py "$models" --models "$model" >&2
done

# The wall time in seconds that /usr/bin/time -v logged in $1.
logged_seconds() {
    grep "Elapsed (wall clock)" "$1" | awk '{print $NF}' | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }'
}

# Runs a command under /usr/bin/time -v; prints "seconds peak_kb" and keeps its output in $2.log.
measure() {
    local log=$1; shift
    /usr/bin/time -v "$@" >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
    local wall peak
    wall=$(logged_seconds "$log")
    peak=$(grep "Maximum resident set size" "$log" | awk '{print $NF}')
    echo "$wall $peak"
}

row() { # label seconds kb detail
    "$PYTHON" -c 'import sys; l,s,k,d=sys.argv[1:]; print(f"| {l} | {float(s):.1f} s | {int(k)/1024:,.0f} MB | {d} |")' "$@"
}

# The reference's phases from its --json line.
phases() {
    "$PYTHON" - "$1" <<'PY'
import json, sys
d = json.loads([line for line in open(sys.argv[1]) if line.startswith("{")][-1])
print(f"collect {d['collect_s']:.1f} s, SVD {d['svd_s']:.1f} s, patch {d['patch_s']:.1f} s; {d['layers']} layers")
PY
}

echo "| job | wall | peak RSS | phases |"
echo "| --- | --- | --- | --- |"
for model in ${MODELS:-resnet18_224 vit_b16}; do
    log="$out/reference-$model$tag.log"
    if [ -n "${REUSE_REFERENCE:-}" ] && [ -f "$log" ]; then
        ref_s=$(logged_seconds "$log")
        ref_kb=$(grep "Maximum resident set size" "$log" | awk '{print $NF}')
    else
        read -r ref_s ref_kb < <(measure "$log" "$PYTHON" bench/unlearn/reference_bench.py \
            --model "$model" --data "$data" --threads "$THREADS" --samples 900 --max-rows "$ROWS" --json \
            --autocast "$autocast")
    fi
    row "$model: PyTorch reference${tag:+ under autocast(bfloat16)}, ≤ $ROWS rows per layer and side" \
        "$ref_s" "$ref_kb" "$(phases "$log")"
    float32_log="$out/reference-$model.log"
    for job in "rows $ROWS" "positions $POSITIONS" ${FULL:+"positions 1024"}; do
        read -r kind n <<<"$job"
        name="$model-$kind-$n$tag"
        read -r s kb < <(measure "$out/lethe-$name.log" "$lethe" unlearn "$models/$model.onnx" \
            --data "$data" --forget 3 --samples 900 --threads "$THREADS" --method published --"$kind" "$n" \
            --precision "$PRECISION" -o "$out/forgot-$name.onnx")
        detail=$(grep "^time" "$out/lethe-$name.log" | sed 's/^time [0-9.]*s (//; s/)$//')
        layers=$(grep -o "[0-9]* layers patched" "$out/lethe-$name.log")
        speed="$("$PYTHON" -c "print(f'{$ref_s / $s:.1f}')")× the reference"
        if [ -n "$tag" ] && [ -f "$float32_log" ]; then
            speed="$speed under autocast, $("$PYTHON" -c "print(f'{$(logged_seconds "$float32_log") / $s:.1f}')")× the float32 one"
        fi
        label=$([ "$kind" = rows ] && echo "--rows $n (the reference's budget)" || echo "$n positions per image")
        label="$label${tag:+, --precision bfloat16}"
        row "$model: lethe, $label" "$s" "$kb" "$detail; $layers; $speed"
    done
done
