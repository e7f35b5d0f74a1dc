#!/usr/bin/env python3
"""The Python reference for the conversion benchmark: what a user does with NumPy and safetensors.

Usage: python_convert.py IN OUT   (IN and OUT are .safetensors or .npz; the extension decides)
"""
import sys

import numpy as np
from safetensors.numpy import load_file, save_file


def main():
    source, target = sys.argv[1], sys.argv[2]
    if source.endswith(".safetensors"):
        arrays = load_file(source)
    else:
        with np.load(source) as archive:
            arrays = {name: archive[name] for name in archive.files}
    if target.endswith(".npz"):
        np.savez(target, **arrays)
    else:
        save_file(arrays, target)


if __name__ == "__main__":
    main()
