#!/usr/bin/env python3
"""Writes the ImageNet-size unlearning benchmark's samples: seeded random images, nothing downloaded.

  OUT/images224.npz   x uint8 [N,3,224,224], y int64 [N]: N/10 images of each class 0..9, class 0 first

Random pixels are enough for what this bench measures (wall time and peak memory of the statistics,
the decompositions and the projection on torchvision-size models); accuracies on them mean nothing.
A file that already exists with the same N is left alone.

Usage: python bench/unlearn/imagenet/make_images.py [--out DIR] [--count 1000]
"""
import argparse
import os

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))


def ensure(out, count):
    path = os.path.join(out, "images224.npz")
    if os.path.exists(path):
        with np.load(path) as d:
            if d["y"].shape[0] == count:
                return path
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(224)
    x = rng.integers(0, 256, size=(count, 3, 224, 224), dtype=np.uint8)
    y = np.repeat(np.arange(10, dtype=np.int64), count // 10)
    y = np.concatenate([y, np.arange(count - len(y), dtype=np.int64)])
    tmp = path + ".tmp.npz"
    np.savez(tmp, x=x, y=y)
    os.replace(tmp, path)
    return path


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, ".build", "bench-data"))
    ap.add_argument("--count", type=int, default=1000)
    print(ensure(**vars(ap.parse_args())))
