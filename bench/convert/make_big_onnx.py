#!/usr/bin/env python3
"""Makes the conversion benchmark's external-data case: an ONNX model whose weights, over 2 GB in
all, live in one external data file, written with the reference library (`onnx.save_model` with
`save_as_external_data`), the way PyTorch saves models above protobuf's 2 GB limit.

Usage: make_big_onnx.py OUT.onnx [TOTAL_MB]

A chain of MatMuls over 100 MB weights (1000 x 25000 float32) and a small bias each, so the
file is a model ONNX Runtime can load, not just a bag of tensors.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def main():
    out = sys.argv[1]
    total = int(sys.argv[2]) if len(sys.argv) > 2 else 2200
    rng = np.random.default_rng(0)
    count = max(1, total // 100)
    nodes, initializers = [], []
    previous = "x"
    for i in range(count):
        # Alternating 1000 -> 25000 and 25000 -> 1000 keeps the chain's shapes consistent.
        shape = (1000, 25_000) if i % 2 == 0 else (25_000, 1000)
        weight = rng.standard_normal(shape, dtype=np.float32)
        bias = rng.standard_normal(shape[1], dtype=np.float32)
        initializers += [numpy_helper.from_array(weight, f"layers.{i}.weight"),
                         numpy_helper.from_array(bias, f"layers.{i}.bias")]
        nodes += [helper.make_node("MatMul", [previous, f"layers.{i}.weight"], [f"h{i}"]),
                  helper.make_node("Add", [f"h{i}", f"layers.{i}.bias"], [f"y{i}"])]
        previous = f"y{i}"
    graph = helper.make_graph(nodes, "big", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1000])],
                              [helper.make_tensor_value_info(previous, TensorProto.FLOAT, None)], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    location = os.path.basename(out) + ".data"
    for stale in (out, os.path.join(os.path.dirname(out) or ".", location)):
        if os.path.exists(stale):
            os.remove(stale)
    onnx.save_model(model, out, save_as_external_data=True, all_tensors_to_one_file=True, location=location,
                    size_threshold=1024)
    print(f"wrote {out} + {location}: {count} weights of 100 MB, largest tensor 100000000 bytes")


if __name__ == "__main__":
    main()
