#!/usr/bin/env bash
# Times `lethe unlearn --method published` beside the PyTorch reference approach (reference_bench.py)
# on the same job: each sample model (MODELS="cnn vit"), forget class 3, S = 900, α_r = 100, α_f = 3,
# same thread count. Prints both wall times and peak RSS, the speed-up, how far Lethe's patched weights
# are from the reference's, and (CNN) from the float64 reference fixture.
# Needs a Python with torch, numpy and safetensors: PYTHON=/path/to/python (default: python3).
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
THREADS=${THREADS:-2}
out=${OUT:-.build/bench-unlearn}
mkdir -p "$out"
[ -x /usr/bin/time ] || { echo "install GNU time (apt-get install time)" >&2; exit 2; }
swift build -c release --product lethe >&2

# Runs a command under /usr/bin/time -v; prints "seconds peak_kb".
measure() {
    local log; log=$(mktemp)
    /usr/bin/time -v "$@" 2>"$log" >/dev/null || { cat "$log" >&2; exit 1; }
    local wall peak
    wall=$(grep "Elapsed (wall clock)" "$log" | awk '{print $NF}' | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
    peak=$(grep "Maximum resident set size" "$log" | awk '{print $NF}')
    rm -f "$log"
    echo "$wall $peak"
}

for model in ${MODELS:-cnn vit}; do
for samples in 900 ${EXTRA_SAMPLES:-}; do
    read -r lethe_s lethe_kb < <(measure .build/release/lethe unlearn "samples/fashion_$model.onnx" \
        --data samples/fashion_train.npz --forget 3 --samples "$samples" --threads "$THREADS" --method published \
        -o "$out/forgot-$model.onnx")
    ref_line=$("$PYTHON" bench/unlearn/reference_bench.py --model "$model" --threads "$THREADS" --samples "$samples" \
        --compare "$out/forgot-$model.onnx" --json)
    read -r ref_s ref_kb diff < <(echo "$ref_line" | "$PYTHON" -c 'import json,sys; d=json.load(sys.stdin); print(d["total_s"], int(d["peak_rss_mb"]*1024), d["max_rel_diff_vs_compare"])')
    "$PYTHON" - "$lethe_s" "$lethe_kb" "$ref_s" "$ref_kb" "$samples" "$model" "$diff" <<'PY'
import sys
ls, lk, rs, rk, s, m, d = float(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6], float(sys.argv[7])
print(f"{m} S={s}: lethe unlearn {ls:.2f}s {lk/1024:.0f}MB | pytorch reference {rs:.2f}s {rk/1024:.0f}MB | "
      f"speed-up {rs/ls:.1f}x, memory ratio {lk/rk:.2f} | weights agree to {d:.1e} (relative)")
PY
done
done
[ -f "$out/forgot-cnn.onnx" ] || exit 0
"$PYTHON" - "$out/forgot-cnn.onnx" <<'PY'
import sys, numpy as np, onnx
from onnx import numpy_helper
ours = {t.name: numpy_helper.to_array(t) for t in onnx.load(sys.argv[1]).graph.initializer}
ref = np.load("formats/models/unlearn/fashion_cnn_default.patched.npz")
worst = max(float(np.abs(ours[k] - ref[k]).max() / max(np.abs(ref[k]).max(), 1e-12)) for k in ref.files if k in ours)
print(f"cnn: largest relative difference from the float64 reference fixture: {worst:.2e}")
PY
