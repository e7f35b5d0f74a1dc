#!/usr/bin/env python3
"""Lethe vs ONNX Runtime throughput (images/s) and peak RSS, same threads, batch 64.

Lethe runs through `lethe run MODEL --input IN.npz --output OUT.npz --threads T`. One process call also
pays for start-up, model loading and npz I/O, so throughput is measured differentially: the time of a
run on 64·(R+1) images minus the time of a run on 64 images, over 64·R images (best of 3 each).
The session splits inputs into chunks of at most 256 images (SessionOptions.maxChunk), so Lethe runs
batches of 256 where ONNX Runtime gets 64 per call. ONNX Runtime is timed in-process over R calls of
batch 64 after a warm-up call. Peak RSS is the child process's ru_maxrss (the whole `lethe run` on
64·(R+1) images; the ONNX Runtime worker with its model and batch).

Usage: bench.py LETHE_BINARY MODELS_DIR [--threads T] [--rounds R]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_child(argv):
    """Runs argv, returns (seconds, peak RSS in MB)."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    out, err = process.communicate()
    if status != 0:
        sys.exit(f"{' '.join(argv)} failed:\n{err.decode()}")
    return elapsed, usage.ru_maxrss / 1024, out


def ort_worker(model, batch_file, threads, rounds):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    x = np.load(batch_file)["x"]
    name = session.get_inputs()[0].name
    session.run(None, {name: x})
    start = time.perf_counter()
    for _ in range(rounds):
        session.run(None, {name: x})
    elapsed = time.perf_counter() - start
    print(json.dumps({"images_per_second": rounds * x.shape[0] / elapsed}))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("lethe")
    parser.add_argument("models")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--ort-worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ort_worker:
        ort_worker(args.ort_worker[0], args.ort_worker[1], args.threads, args.rounds)
        return
    import onnxruntime as ort
    cases = [
        ("sample CNN", os.path.join(ROOT, "samples", "fashion_cnn.onnx"), (1, 28, 28)),
        ("ResNet-18", os.path.join(args.models, "resnet18.onnx"), (3, 32, 32)),
        ("ViT-tiny", os.path.join(args.models, "vit_tiny.onnx"), (3, 32, 32)),
    ]
    rng = np.random.default_rng(0)
    work = tempfile.mkdtemp(prefix="lethe-bench-")
    print(f"threads {args.threads}, batch 64, {args.rounds} rounds; ORT {ort.__version__}")
    print(f"{'model':<12} {'Lethe img/s':>12} {'ORT img/s':>10} {'ratio':>6} {'Lethe RSS MB':>13} {'ORT RSS MB':>11}")
    for label, model, shape in cases:
        if not os.path.exists(model):
            print(f"{label:<12} missing {model}")
            continue
        name = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).get_inputs()[0].name
        small = rng.standard_normal((64,) + shape).astype(np.float32)
        large = rng.standard_normal((64 * (args.rounds + 1),) + shape).astype(np.float32)
        paths = {}
        for key, array in (("small", small), ("large", large)):
            paths[key] = os.path.join(work, f"{key}.npz")
            np.savez(paths[key], **{name: array})
        np.savez(os.path.join(work, "batch.npz"), x=small)
        timings = {}
        peak = 0
        for key in ("small", "large"):
            best = float("inf")
            for _ in range(3):
                seconds, rss, _ = run_child([args.lethe, "run", model, "--input", paths[key], "--output",
                                             os.path.join(work, "out.npz"), "--threads", str(args.threads)])
                best = min(best, seconds)
                if key == "large":
                    peak = max(peak, rss)
            timings[key] = best
        lethe_rate = 64 * args.rounds / max(1e-9, timings["large"] - timings["small"])
        _, ort_rss, out = run_child([sys.executable, __file__, args.lethe, args.models, "--threads", str(args.threads),
                                     "--rounds", str(args.rounds), "--ort-worker", model, os.path.join(work, "batch.npz")])
        ort_rate = json.loads(out.decode().strip().splitlines()[-1])["images_per_second"]
        print(f"{label:<12} {lethe_rate:>12.1f} {ort_rate:>10.1f} {lethe_rate / ort_rate:>6.2f} {peak:>13.0f} {ort_rss:>11.0f}")


if __name__ == "__main__":
    main()
