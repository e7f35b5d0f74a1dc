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
$lethe unlearn samples/fashion_cnn.onnx --data samples/fashion_train.npz --test samples/fashion_test.npz \
    --forget "${FORGET:-7}" -o $out/fashion_cnn_forgot.onnx --report $out/report.html
# Exit 1 from diff means "different", which is what a patch should be.
$lethe diff samples/fashion_cnn.onnx $out/fashion_cnn_forgot.onnx || [ $? -eq 1 ]
echo "report: $out/report.html"
