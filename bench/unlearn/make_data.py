#!/usr/bin/env python3
"""Writes the every-class benchmark's data from Debian's Fashion-MNIST (deterministic, idempotent).

  .build/bench-data/fashion_train500.npz  x uint8 [5000,1,28,28], y int64 [5000]: the first 500
                                          training images of each class, grouped by class (class 0 first)
  .build/bench-data/fashion_test10k.npz   x uint8 [10000,1,28,28], y int64 [10000]: the whole test set,
                                          in file order

Same layout as samples/fashion_train.npz. A file that already exists is left alone.

Usage: /work/pyenv/bin/python bench/unlearn/make_data.py [--data DIR] [--out DIR]
"""
import argparse
import os
import sys

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "samples"))
import make_sample  # noqa: E402  (IDX parser, first_per_class)

DEFAULT_OUT = os.path.join(ROOT, ".build", "bench-data")
TRAIN_NAME, TEST_NAME = "fashion_train500.npz", "fashion_test10k.npz"


def ensure(out=DEFAULT_OUT, data="/usr/share/datasets/fashion-mnist", per_class=500, log=sys.stderr):
    """Writes the two files if missing; returns (train_path, test_path)."""
    train_path, test_path = os.path.join(out, TRAIN_NAME), os.path.join(out, TEST_NAME)
    if os.path.exists(train_path) and os.path.exists(test_path):
        return train_path, test_path
    os.makedirs(out, exist_ok=True)
    (xtr, ytr), (xte, yte) = make_sample.load_fashion(data)
    for path, x, y in ((train_path, *(lambda i: (xtr[i], ytr[i]))(make_sample.first_per_class(ytr, per_class))),
                       (test_path, xte, yte)):
        if os.path.exists(path):
            continue
        tmp = path + ".tmp.npz"
        np.savez_compressed(tmp, x=np.ascontiguousarray(x), y=y.astype(np.int64))
        os.replace(tmp, path)
        if log:
            print(f"wrote {path}: x {x.shape} {x.dtype}, y {y.shape}", file=log)
    return train_path, test_path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    for p in ensure(args.out, args.data):
        print(p)


if __name__ == "__main__":
    main()
