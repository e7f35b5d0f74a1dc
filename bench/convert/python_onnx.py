#!/usr/bin/env python3
"""The reference tools doing what `lethe convert` does with an external-data ONNX model.

Usage: python_onnx.py IN.onnx OUT.onnx        (onnx.load + onnx.save_model, data kept external)
       python_onnx.py IN.onnx OUT.safetensors (onnx.load + safetensors.numpy.save_file)
"""
import os
import sys

import onnx
from onnx import numpy_helper


def main():
    source, target = sys.argv[1], sys.argv[2]
    model = onnx.load(source)
    if target.endswith(".onnx"):
        onnx.save_model(model, target, save_as_external_data=True, all_tensors_to_one_file=True,
                        location=os.path.basename(target) + ".data", size_threshold=1024)
    else:
        from safetensors.numpy import save_file
        save_file({t.name: numpy_helper.to_array(t) for t in model.graph.initializer}, target)


if __name__ == "__main__":
    main()
