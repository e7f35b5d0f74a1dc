#!/usr/bin/env python3
"""Exits 0 when every named array of the given files (safetensors, npz, or ONNX initializers with
their external data) has identical bytes.

Usage: check_same.py A B [C ...]
"""
import sys

import numpy as np
from safetensors.numpy import load_file


def load(path):
    if path.endswith(".safetensors"):
        return load_file(path)
    if path.endswith(".onnx"):
        import onnx
        from onnx import numpy_helper
        return {t.name: numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer}
    with np.load(path) as archive:
        return {name: archive[name] for name in archive.files}


def main():
    reference = load(sys.argv[1])
    for other_path in sys.argv[2:]:
        other = load(other_path)
        assert reference.keys() == other.keys(), f"{other_path}: names differ"
        for name, array in reference.items():
            b = other[name]
            assert array.dtype == b.dtype and array.shape == b.shape, f"{other_path}: {name} dtype/shape differ"
            assert array.tobytes() == b.tobytes(), f"{other_path}: {name} values differ"
        print(f"same: {sys.argv[1]} == {other_path} ({len(reference)} arrays)")


if __name__ == "__main__":
    main()
