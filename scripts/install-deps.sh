#!/usr/bin/env bash
# Installs what a fresh Debian machine with Swift lacks: the system libraries (only those that
# pkg-config or the header check cannot find) and, with --python, a virtual environment under
# .build/venv holding the reference libraries the interop tests compare against.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
pkg-config --exists openblas || missing+=(libopenblas-dev)
pkg-config --exists lapacke || missing+=(liblapacke-dev)
pkg-config --exists zlib || missing+=(zlib1g-dev)
pkg-config --exists libpng || missing+=(libpng-dev)
[ -f /usr/include/jpeglib.h ] || missing+=(libjpeg62-turbo-dev)
[ -f /usr/include/dnnl.h ] || missing+=(libdnnl-dev)
[ -f /usr/include/libsvm/svm.h ] || missing+=(libsvm-dev)
command -v pkg-config >/dev/null || missing+=(pkg-config)
if [ "${1:-}" = "--python" ] || [ "${1:-}" = "--samples" ]; then
    [ -d /usr/share/datasets/fashion-mnist ] || missing+=(dataset-fashion-mnist)
fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing Debian packages: ${missing[*]}" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ "${1:-}" = "--python" ]; then
    venv=.build/venv
    stamp=$venv/.lethe-requirements
    want="numpy safetensors onnx==1.22.0 onnxruntime scikit-learn pillow"
    if [ ! -x $venv/bin/python3 ] || [ "$(cat $stamp 2>/dev/null)" != "$want" ]; then
        echo "creating $venv with: $want" >&2
        mkdir -p .build
        python3 -m venv $venv
        $venv/bin/pip install -q --disable-pip-version-check $want
        echo "$want" > $stamp
    fi
fi
