#!/usr/bin/env python3
"""Regenerates the safetensors conformance fixtures with the reference library.

Usage: make_fixtures.py [OUT_DIR]   (default: the fixtures/ folder beside this script)

Writes small .safetensors files plus manifest.json, which lists for every file its metadata
and, per tensor in file (data-offset) order, the dtype, shape and the hex of its little-endian
C-order bytes, so that tests without Python can check values exactly.
"""
import json
import os
import sys

import numpy as np
import torch
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import save_file as save_torch


def tensor_bytes(t):
    if isinstance(t, torch.Tensor):
        t = t.contiguous()
        return t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
    return np.ascontiguousarray(t).tobytes()


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
    os.makedirs(out, exist_ok=True)
    g = torch.Generator().manual_seed(7)
    base = torch.randn(2, 3, generator=g) * 4

    every_dtype = {
        "bool": torch.tensor([[True, False, True], [False, False, True]]),
        "u8": torch.arange(6, dtype=torch.uint8).reshape(2, 3) * 40,
        "i8": torch.tensor([-128, -1, 0, 1, 127], dtype=torch.int8),
        "i16": torch.tensor([-32768, -2, 3, 32767], dtype=torch.int16),
        "u16": torch.tensor([0, 1, 65535], dtype=torch.uint16),
        "i32": torch.tensor([[-(2 ** 31), 5], [7, 2 ** 31 - 1]], dtype=torch.int32),
        "u32": torch.tensor([0, 4000000000], dtype=torch.uint32),
        "i64": torch.tensor([-(2 ** 63), 9, 2 ** 63 - 1], dtype=torch.int64),
        "u64": torch.tensor([0, 2 ** 63 + 5], dtype=torch.uint64),
        "f16": base.to(torch.float16),
        "bf16": base.to(torch.bfloat16),
        "f32": base,
        "f64": base.to(torch.float64) / 3,
        "f8_e4m3": base.to(torch.float8_e4m3fn),
        "f8_e5m2": base.to(torch.float8_e5m2),
        "f8_e4m3fnuz": base.to(torch.float8_e4m3fnuz),
        "f8_e5m2fnuz": base.to(torch.float8_e5m2fnuz),
        "c64": torch.complex(base, -base),
    }
    files = {
        "every_dtype.safetensors": (every_dtype, {"format": "pt", "zeta": "last", "alpha": "é ünïcode \"quoted\""}),
        "empty_and_scalar.safetensors": ({
            "scalar": torch.tensor(3.5, dtype=torch.float32),
            "empty": torch.zeros(0, 3, dtype=torch.float32),
            "empty_i64": torch.zeros(4, 0, dtype=torch.int64),
            "weight": torch.arange(12, dtype=torch.float32).reshape(3, 4),
        }, None),
        "model.safetensors": ({
            "conv.weight": torch.randn(4, 3, 3, 3, generator=g),
            "conv.bias": torch.randn(4, generator=g),
            "fc.weight": torch.randn(10, 16, generator=g),
            "fc.bias": torch.randn(10, generator=g),
            "bn.num_batches_tracked": torch.tensor(17, dtype=torch.int64),
        }, {"format": "pt"}),
    }
    manifest = {}
    for name, (tensors, metadata) in files.items():
        path = os.path.join(out, name)
        save_torch(tensors, path, metadata=metadata)
        with open(path, "rb") as f:
            data = f.read()
        n = int.from_bytes(data[:8], "little")
        header = json.loads(data[8:8 + n])
        meta = header.pop("__metadata__", None)
        ordered = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"])
        manifest[name] = {
            "metadata": list((meta or {}).items()),
            "tensors": [
                {"name": k, "dtype": v["dtype"], "shape": v["shape"],
                 "hex": data[8 + n + v["data_offsets"][0]: 8 + n + v["data_offsets"][1]].hex()}
                for k, v in ordered
            ],
        }
        assert all(bytes.fromhex(t["hex"]) == tensor_bytes(tensors[t["name"]]) for t in manifest[name]["tensors"])
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    # A NumPy-written file too (numpy's safetensors front end), for the fresh-write comparison.
    save_numpy({"b": np.arange(4, dtype=np.float32), "a": np.ones((2, 2), dtype=np.float64),
                "c": np.array([1, 2], dtype=np.uint8)}, os.path.join(out, "numpy_written.safetensors"))


if __name__ == "__main__":
    main()
