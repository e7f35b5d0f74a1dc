#!/usr/bin/env python3
"""Forgetting in float32 against bfloat16 products (`lethe unlearn --precision bfloat16`).

For each sample model, method and class c, the same job twice:

  lethe unlearn samples/fashion_{cnn,vit}.onnx --data .build/bench-data/fashion_train500.npz \
      --forget c [--method published] --precision {float32,bfloat16} -o OUT.onnx

then both patched files scored by ONNX Runtime in float32 on .build/bench-data/fashion_test10k.npz
(ACC_r: test samples of the other classes, ACC_f: of class c), so the bfloat16 job is judged as its
output is deployed. Prints one row per job pair and the means per model and method.

Usage: /work/pyenv/bin/python bench/unlearn/precision.py [--models cnn,vit] [--methods erase,published]
           [--classes 0,...,9] [--lethe .build/release/lethe] [--out .build/bench-precision]
(bench/unlearn/make_data.py makes the data files.)
"""
import argparse
import os
import subprocess
import time

import numpy as np
import onnxruntime as ort

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def accuracies(path, x, y, forget):
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    logits = np.concatenate([session.run(None, {name: x[i:i + 1000]})[0] for i in range(0, len(x), 1000)])
    right = logits.argmax(1) == y
    retain = y != forget
    return 100 * right[retain].mean(), 100 * right[~retain].mean()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="cnn,vit")
    ap.add_argument("--methods", default="erase,published")
    ap.add_argument("--classes", default=",".join(map(str, range(10))))
    ap.add_argument("--lethe", default=os.path.join(ROOT, ".build", "release", "lethe"))
    ap.add_argument("--out", default=os.path.join(ROOT, ".build", "bench-precision"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    data = os.path.join(ROOT, ".build", "bench-data")
    test = np.load(os.path.join(data, "fashion_test10k.npz"))
    x = (test["x"].astype(np.float32) / np.float32(255.0))
    y = test["y"]
    print("| model | method | class | float32 ACC_r / ACC_f | bfloat16 ACC_r / ACC_f | float32 s | bfloat16 s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    summary = []
    for model in args.models.split(","):
        for method in args.methods.split(","):
            rows = []
            for c in map(int, args.classes.split(",")):
                row = {}
                for precision in ("float32", "bfloat16"):
                    out = os.path.join(args.out, f"{model}-{method}-{c}-{precision}.onnx")
                    start = time.perf_counter()
                    subprocess.run([args.lethe, "unlearn", os.path.join(ROOT, "samples", f"fashion_{model}.onnx"),
                                    "--data", os.path.join(data, "fashion_train500.npz"), "--forget", str(c),
                                    "--method", method, "--precision", precision, "-o", out],
                                   check=True, capture_output=True)
                    row[precision] = (*accuracies(out, x, y, c), time.perf_counter() - start)
                rows.append(row)
                f, b = row["float32"], row["bfloat16"]
                print(f"| {model} | {method} | {c} | {f[0]:.2f} / {f[1]:.2f} | {b[0]:.2f} / {b[1]:.2f} "
                      f"| {f[2]:.1f} | {b[2]:.1f} |", flush=True)
            mean = {p: np.mean([r[p] for r in rows], axis=0) for p in ("float32", "bfloat16")}
            summary.append((model, method, mean))
    print()
    print("| model | method | float32 mean ACC_r / ACC_f | bfloat16 mean ACC_r / ACC_f |")
    print("| --- | --- | --- | --- |")
    for model, method, mean in summary:
        f, b = mean["float32"], mean["bfloat16"]
        print(f"| {model} | {method} | {f[0]:.2f} / {f[1]:.2f} | {b[0]:.2f} / {b[1]:.2f} |")


if __name__ == "__main__":
    main()
