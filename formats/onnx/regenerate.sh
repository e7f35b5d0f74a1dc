#!/bin/sh
# Regenerates Sources/LetheONNX/Generated/onnx.pb.swift from formats/onnx/onnx.proto.
#
# Needs protoc (Debian: protobuf-compiler) and protoc-gen-swift built from apple/swift-protobuf at
# the version pinned in Package.resolved:
#   git clone --branch 1.39.0 https://github.com/apple/swift-protobuf && cd swift-protobuf &&
#   swift build -c release --product protoc-gen-swift
# Pass the plugin's path as $PROTOC_GEN_SWIFT. The generated file is committed; CI never runs this.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
plugin=${PROTOC_GEN_SWIFT:-/work/swift-protobuf-src/.build/release/protoc-gen-swift}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
protoc --plugin=protoc-gen-swift="$plugin" \
  --proto_path="$root/formats/onnx" \
  --swift_out="$out" --swift_opt=Visibility=Internal \
  "$root/formats/onnx/onnx.proto"
{
  printf '%s\n' \
    '// GENERATED CODE — do not edit. Regenerate with formats/onnx/regenerate.sh:' \
    '//   protoc --plugin=protoc-gen-swift=<protoc-gen-swift 1.39.0> --proto_path=formats/onnx \' \
    '//     --swift_out=<dir> --swift_opt=Visibility=Internal formats/onnx/onnx.proto' \
    '// then prepend this header and move <dir>/onnx.pb.swift here.' \
    ''
  cat "$out/onnx.pb.swift"
} > "$root/Sources/LetheONNX/Generated/onnx.pb.swift"
echo "wrote Sources/LetheONNX/Generated/onnx.pb.swift"
