#!/usr/bin/env bash
# Installs what is missing, builds Lethe in release mode, and runs the main job on the bundled
# sample: forget one class of the Fashion-MNIST classifier and show accuracy before and after.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --product lethe
lethe=.build/release/lethe
out=.build/demo
mkdir -p $out
$lethe inspect samples/fashion_cnn.onnx
if $lethe unlearn --help >/dev/null 2>&1; then
    $lethe unlearn samples/fashion_cnn.onnx --data samples/fashion_train.npz --test samples/fashion_test.npz \
        --forget "${FORGET:-0}" -o $out/fashion_cnn_forgot.onnx --report $out/report.html
    $lethe diff samples/fashion_cnn.onnx $out/fashion_cnn_forgot.onnx || true
else
    $lethe convert samples/fashion_cnn.onnx $out/fashion_cnn.safetensors
    $lethe convert $out/fashion_cnn.safetensors $out/fashion_cnn.onnx --graph samples/fashion_cnn.onnx
    $lethe diff samples/fashion_cnn.onnx $out/fashion_cnn.onnx
fi
