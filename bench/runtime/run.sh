#!/bin/sh
# Benchmark: Lethe vs ONNX Runtime on the sample CNN, ResNet-18 and ViT-tiny (32×32), batch 64, same threads.
# Usage: bench/runtime/run.sh [--threads T] [--rounds R]     (needs LETHE_PYTHON or .build/venv with torch + onnxruntime)
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
python=${LETHE_PYTHON:-$root/.build/venv/bin/python3}
models="$root/.build/bench-models"
cd "$root"
swift build -c release --product lethe
lethe="$(swift build -c release --show-bin-path)/lethe"
if [ ! -f "$models/resnet18.onnx" ] || [ ! -f "$models/vit_tiny.onnx" ]; then
    "$python" bench/runtime/make_models.py "$models" --models resnet18,vit_tiny --batch 64
fi
exec "$python" bench/runtime/bench.py "$lethe" "$models" "$@"
