#!/bin/sh
# Puts the ONNX backend node tests (onnx 1.22.0) under .build/onnx-backend-node/ for
# Tests/LetheRuntimeTests/ONNXBackendConformanceTests. The data is not committed.
#
# Uses the copy inside an installed onnx 1.22.0 when $LETHE_PYTHON (or .build/venv) has one,
# else downloads the wheel with pip and unzips only onnx/backend/test/data/node/.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
target="$root/.build/onnx-backend-node"
version=1.22.0
python=${LETHE_PYTHON:-$root/.build/venv/bin/python3}
if [ -f "$target/.version" ] && [ "$(cat "$target/.version")" = "$version" ]; then
    echo "ONNX backend node tests already in $target"
    exit 0
fi
rm -rf "$target.tmp"
mkdir -p "$target.tmp"
source_dir=""
if [ -x "$python" ]; then
    installed=$("$python" -c "import onnx, os; print(onnx.__version__); print(os.path.dirname(onnx.__file__))" 2>/dev/null || true)
    if [ "$(echo "$installed" | head -n1)" = "$version" ]; then
        candidate="$(echo "$installed" | tail -n1)/backend/test/data/node"
        [ -d "$candidate" ] && source_dir=$candidate
    fi
fi
if [ -n "$source_dir" ]; then
    cp -R "$source_dir/." "$target.tmp/"
else
    pip=${PIP:-pip3}
    [ -x "$python" ] && pip="$python -m pip"
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    $pip download --no-deps --only-binary=:all: --dest "$work" "onnx==$version"
    wheel=$(ls "$work"/onnx-*.whl | head -n1)
    (cd "$work" && unzip -q "$wheel" 'onnx/backend/test/data/node/*')
    cp -R "$work/onnx/backend/test/data/node/." "$target.tmp/"
fi
echo "$version" > "$target.tmp/.version"
rm -rf "$target"
mv "$target.tmp" "$target"
echo "ONNX backend node tests ($(ls "$target" | wc -l) cases) in $target"
