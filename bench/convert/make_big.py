#!/usr/bin/env python3
"""Makes the conversion benchmark's input: about 1 GB of float32 tensors in safetensors.

Usage: make_big.py OUT.safetensors [TOTAL_MB]

A few hundred tensors of mixed sizes, the largest ~100 MB, in the shapes of a large vision
model, written with the reference library.
"""
import sys

import numpy as np
from safetensors.numpy import save_file


def main():
    out = sys.argv[1]
    total = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    rng = np.random.default_rng(0)
    tensors = {"head.weight": rng.standard_normal((25_000, 1_000), dtype=np.float32)}  # 100 MB
    remaining = total * 1_000_000 - tensors["head.weight"].nbytes
    index = 0
    while remaining > 0:
        channels = int(rng.choice([64, 128, 256, 512, 768]))
        size = min(remaining // 4, channels * channels * 9) or 1
        tensors[f"blocks.{index}.conv.weight"] = rng.standard_normal(size, dtype=np.float32).reshape(-1)
        tensors[f"blocks.{index}.bn.bias"] = rng.standard_normal(channels, dtype=np.float32)
        remaining -= size * 4 + channels * 4
        index += 1
    save_file(tensors, out, metadata={"format": "pt", "bench": "lethe-convert"})
    largest = max(t.nbytes for t in tensors.values())
    print(f"{out}: {len(tensors)} tensors, {sum(t.nbytes for t in tensors.values()) / 1e6:.0f} MB, "
          f"largest {largest / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
