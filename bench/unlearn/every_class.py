#!/usr/bin/env python3
"""Every-class unlearning benchmark: each class of each sample model forgotten in turn, per method,
against the retrained-from-scratch gold standard of retrain.py.

For model in {cnn: samples/fashion_cnn.onnx, vit: samples/fashion_vit.onnx}, class c and method:

  lethe unlearn MODEL --data .build/bench-data/fashion_train500.npz \
      --test .build/bench-data/fashion_test10k.npz --forget c -o OUT.onnx --json [METHOD FLAGS]

(wall time of the lethe process measured here), then probe.py's probe recovery on OUT.onnx, joined
with `.build/bench-retrained/results.json` (retrained ACC_r, ACC_f, probe; the original's probe).

Goal checks per row (percentage points on the 10k test set):
  G1  ACC_f after < 1%  and  ACC_r after ≥ ACC_r before − 0.5
  G2  G1  and  probe after ≤ retrained model's probe + 5
  G3  MIA efficacy after ≥ the `published` method's on the same model and class

Methods: `--methods default,published` (names: default = no flag, published = `--method published`),
or NAME=FLAGS for any other configuration, e.g. `--methods 'default,search2=--search --passes 2'`.

Writes OUT_DIR/table.md (also printed), OUT_DIR/rows.json, and each lethe report as
OUT_DIR/{model}-{method}-{c}.json next to the patched OUT_DIR/{model}-{method}-{c}.onnx.

Usage: /work/pyenv/bin/python bench/unlearn/every_class.py [--models cnn,vit] [--classes 0,...,9]
           [--methods default,published] [--out .build/bench-every-class] [--lethe .build/release/lethe]
       every_class.py --rejoin DIR[,DIR]   (one table from earlier runs' rows.json and the current retrained results)
"""
import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import make_data  # noqa: E402
import probe  # noqa: E402

MODELS = {"cnn": "samples/fashion_cnn.onnx", "vit": "samples/fashion_vit.onnx"}
KNOWN_METHODS = {"default": [], "published": ["--method", "published"]}
CLASS_NAMES = ["T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
               "ankle boot"]


def parse_methods(spec):
    methods = []
    for token in spec.split(","):
        token = token.strip()
        if not token:
            continue
        if "=" in token:
            name, flags = token.split("=", 1)
            methods.append((name, shlex.split(flags)))
        elif token in KNOWN_METHODS:
            methods.append((token, KNOWN_METHODS[token]))
        else:
            raise SystemExit(f"unknown method {token!r}: use one of {sorted(KNOWN_METHODS)} or NAME=FLAGS")
    return methods


def dig(d, path):
    for k in path.split("."):
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def run_one(lethe, model, method, flags, c, train, test, out, threads):
    stem = os.path.join(out, f"{model}-{method}-{c}")
    onnx_out, report_path = stem + ".onnx", stem + ".json"
    cmd = [lethe, "unlearn", os.path.join(ROOT, MODELS[model]), "--data", train, "--test", test,
           "--forget", str(c), "-o", onnx_out, "--json", *flags]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    row = {"model": model, "class": c, "method": method, "flags": flags, "seconds": wall,
           "command": " ".join(shlex.quote(a) for a in cmd), "exit": proc.returncode}
    if proc.returncode != 0:
        row["error"] = (proc.stderr.strip().splitlines() or ["(no stderr)"])[-1]
        with open(stem + ".stderr.txt", "w") as f:
            f.write(proc.stderr)
        return row
    with open(report_path, "w") as f:
        f.write(proc.stdout)
    rep = json.loads(proc.stdout)
    for key, path in (("accRBefore", "test.before.retainAccuracy"), ("accFBefore", "test.before.forgetAccuracy"),
                      ("accRAfter", "test.after.retainAccuracy"), ("accFAfter", "test.after.forgetAccuracy"),
                      ("miaBefore", "test.membershipBefore.efficacy"),
                      ("miaAfter", "test.membershipAfter.efficacy"), ("letheTotal", "timings.total")):
        row[key] = dig(rep, path)
    row["layers"] = len(rep.get("layers", []))
    row["skippedLayers"] = len(rep.get("skippedLayers", []))
    # Lethe reports the same probe (its own L-BFGS logistic regression on the standardised head input,
    # fitted on --data, scored on --test's forget samples; checked against scikit-learn in the tests).
    # --python-probe re-measures every patched model with probe.py instead (about 30 s each).
    reported = dig(rep, "test.probe.after")
    row["probeReportedBefore"] = dig(rep, "test.probe.before")
    if PYTHON_PROBE or reported is None:
        p = probe.probe_recovery(onnx_out, train, test, c, threads)
        row["probeAfter"] = p["probeForgetAccuracy"]
        row["probeAllAfter"] = p["probeAccuracy"]
        row["probeSource"] = "probe.py"
    else:
        row["probeAfter"] = reported
        row["probeSource"] = "lethe report"
    return row


PYTHON_PROBE = False


def join_retrained(rows, results):
    models = (results or {}).get("models", {})
    for r in rows:
        m = models.get(r["model"], {})
        ret = m.get("retrained", {}).get(str(r["class"]))
        orig = m.get("original", {}).get("perClass", {}).get(str(r["class"]))
        r["probeOriginal"] = orig["probe"] if orig else None
        if ret:
            r["retrainedAccR"], r["retrainedAccF"], r["retrainedProbe"] = ret["accR"], ret["accF"], ret["probe"]


def goals(rows):
    published = {(r["model"], r["class"]): r.get("miaAfter") for r in rows
                 if r["method"] == "published" and r.get("miaAfter") is not None}
    for r in rows:
        if "error" in r:
            r["G1"] = r["G2"] = r["G3"] = False
            continue
        r["G1"] = r["accFAfter"] < 0.01 and r["accRAfter"] >= r["accRBefore"] - 0.005
        r["G2"] = (r["G1"] and r["probeAfter"] <= r["retrainedProbe"] + 0.05
                   if r.get("retrainedProbe") is not None else None)
        pub = published.get((r["model"], r["class"]))
        r["G3"] = (r["miaAfter"] >= pub - 1e-12 if pub is not None and r.get("miaAfter") is not None else None)


def pct(v, digits=1):
    return "–" if v is None else f"{v * 100:.{digits}f}"


def mark(v):
    return "n/a" if v is None else ("✓" if v else "✗")


def table(rows, methods, models):
    lines = ["| model | class | method | ACC_r before → after | ACC_f before → after | "
             "probe original → after (retrained) | retrained ACC_r / ACC_f | MIA before → after | time s | "
             "G1 | G2 | G3 |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        cls = f"{r['class']} {CLASS_NAMES[r['class']]}"
        if "error" in r:
            lines.append(f"| {r['model']} | {cls} | {r['method']} | error: {r['error']} | | | | | "
                         f"{r['seconds']:.1f} | ✗ | ✗ | ✗ |")
            continue
        lines.append(
            f"| {r['model']} | {cls} | {r['method']} "
            f"| {pct(r['accRBefore'], 2)} → {pct(r['accRAfter'], 2)} "
            f"| {pct(r['accFBefore'])} → {pct(r['accFAfter'])} "
            f"| {pct(r.get('probeOriginal'))} → {pct(r['probeAfter'])} ({pct(r.get('retrainedProbe'))}) "
            f"| {pct(r.get('retrainedAccR'), 2)} / {pct(r.get('retrainedAccF'))} "
            f"| {pct(r['miaBefore'])} → {pct(r['miaAfter'])} "
            f"| {r['seconds']:.1f} | {mark(r['G1'])} | {mark(r['G2'])} | {mark(r['G3'])} |")
    summary = []
    for m in models:
        for name, _ in methods:
            sel = [r for r in rows if r["model"] == m and r["method"] == name]
            if not sel:
                continue

            def count(g):
                known = [r[g] for r in sel if r[g] is not None]
                return f"{sum(known)}/{len(known)}" if known else "n/a"
            mean_t = sum(r["seconds"] for r in sel) / len(sel)
            summary.append(f"{m} {name}: G1 {count('G1')}, G2 {count('G2')}, G3 {count('G3')}, "
                           f"mean time {mean_t:.1f} s")
    return lines, summary


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="cnn,vit")
    ap.add_argument("--classes", default="0,1,2,3,4,5,6,7,8,9")
    ap.add_argument("--methods", default="default,published")
    ap.add_argument("--out", default=os.path.join(ROOT, ".build", "bench-every-class"))
    ap.add_argument("--lethe", default=os.path.join(ROOT, ".build", "release", "lethe"))
    ap.add_argument("--retrained", default=os.path.join(ROOT, ".build", "bench-retrained", "results.json"))
    ap.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads for the probe")
    ap.add_argument("--python-probe", action="store_true",
                    help="measure every patched model's probe with probe.py instead of taking Lethe's reported figure")
    ap.add_argument("--rejoin", metavar="DIR[,DIR]",
                    help="run nothing: rebuild one table from the rows.json of earlier runs with the current --retrained results")
    args = ap.parse_args()
    if args.rejoin:
        rows = []
        for folder in args.rejoin.split(","):
            with open(os.path.join(folder, "rows.json")) as f:
                rows += json.load(f)
        with open(args.retrained) as f:
            join_retrained(rows, json.load(f))
        goals(rows)
        methods = [(name, KNOWN_METHODS.get(name, [])) for name in dict.fromkeys(r["method"] for r in rows)]
        lines, summary = table(rows, methods, list(dict.fromkeys(r["model"] for r in rows)))
        print("\n".join(lines + [""] + [f"- {s}" for s in summary]))
        return
    global PYTHON_PROBE
    PYTHON_PROBE = args.python_probe
    models = [m for m in args.models.split(",") if m]
    for m in models:
        if m not in MODELS:
            raise SystemExit(f"unknown model {m} ({', '.join(MODELS)})")
    classes = [int(c) for c in args.classes.split(",") if c]
    methods = parse_methods(args.methods)
    if not os.path.exists(args.lethe):
        raise SystemExit(f"{args.lethe} missing (swift build -c release --product lethe)")
    os.makedirs(args.out, exist_ok=True)
    train, test = make_data.ensure()
    results = None
    if os.path.exists(args.retrained):
        with open(args.retrained) as f:
            results = json.load(f)
    else:
        print(f"note: {args.retrained} missing (run retrain.py): no retrained columns, G2 n/a", file=sys.stderr)

    rows = []
    for m in models:
        for c in classes:
            for name, flags in methods:
                row = run_one(args.lethe, m, name, flags, c, train, test, args.out, args.threads)
                rows.append(row)
                if "error" in row:
                    print(f"{m} class {c} {name}: lethe exit {row['exit']}: {row['error']}", file=sys.stderr)
                else:
                    print(f"{m} class {c} {name}: ACC_r {pct(row['accRAfter'], 2)} ACC_f {pct(row['accFAfter'])} "
                          f"probe {pct(row['probeAfter'])} MIA {pct(row['miaAfter'])} {row['seconds']:.1f}s",
                          file=sys.stderr, flush=True)
    join_retrained(rows, results)
    goals(rows)
    lines, summary = table(rows, methods, models)
    try:
        commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
    except OSError:
        commit = "?"
    header = [f"# Every-class unlearning benchmark",
              "",
              f"{datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}, commit {commit}, lethe {args.lethe}; "
              f"data {os.path.relpath(train, ROOT)} (unlearn + probe training), "
              f"test {os.path.relpath(test, ROOT)}; percentages on the test set; time = wall time of lethe.",
              "Probe: logistic regression on the head's input features, trained on all classes; "
              "value = its accuracy on the forgotten class (retrained model's in parentheses).",
              "G1: ACC_f < 1% and ACC_r ≥ before − 0.5 pt; G2: G1 and probe ≤ retrained + 5 pt; "
              "G3: MIA ≥ published method's.",
              ""]
    text = "\n".join(header + lines + [""] + [f"- {s}" for s in summary]) + "\n"
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write(text)
    with open(os.path.join(args.out, "rows.json"), "w") as f:
        json.dump(rows, f, indent=1)
        f.write("\n")
    print(text)


if __name__ == "__main__":
    main()
