#!/usr/bin/env python3
"""Probe recovery: how much of a forgotten class a linear probe can still read from a model's features.

The penultimate features are the input of the model's final Gemm/MatMul (the last Gemm or MatMul
node, in graph order, whose output reaches a graph output; for both samples that is the head's input,
[N, F]). They are read with ONNX Runtime from an in-memory copy of the model with that value added as
an extra graph output (external data is loaded from the model's folder). A StandardScaler fitted on the
training features, then LogisticRegression (multinomial, lbfgs, C=1.0, max_iter=2000) fitted on the
training features of ALL classes (the forgotten one included) with their labels. Reported: the probe's
accuracy on the test samples of the forgotten class (the probe recovery) and on all test samples,
plus the model's own accuracy (from the same forward pass) on the retained and forgotten classes.

uint8 x is scaled by 1/255; float x is used as is. Deterministic.

CLI:    probe.py MODEL.onnx --train T.npz --test S.npz --forget C [--json]
Python: probe.probe_recovery(model, train, test, forget) -> dict   (train/test: paths or (x, y));
        probe.measure(probe.fit_probe(model, train, test), c) for several classes from one fit.
"""
import argparse
import json
import os
import sys
import time

import numpy as np


def _as_xy(data):
    if isinstance(data, (str, os.PathLike)):
        with np.load(data) as f:
            return f["x"], f["y"].astype(np.int64)
    x, y = data
    return x, np.asarray(y).astype(np.int64)


def _scaled(x):
    return x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)


def find_feature(model):
    """(value name, node) of the activation input of the last Gemm/MatMul that reaches a graph output."""
    graph = model.graph
    producer = {o: n for n in graph.node for o in n.output}
    # Backwards from the outputs: every node whose result reaches a graph output.
    reaching, stack = set(), [o.name for o in graph.output]
    while stack:
        v = stack.pop()
        n = producer.get(v)
        if n is None or id(n) in reaching:
            continue
        reaching.add(id(n))
        stack.extend(i for i in n.input if i)
    # Forwards from the graph inputs (not initializers): values that depend on the data.
    inits = {i.name for i in graph.initializer}
    live = {i.name for i in graph.input if i.name not in inits}
    for n in graph.node:  # graph.node is topologically sorted in a valid model
        if any(i in live for i in n.input if i):
            live.update(o for o in n.output if o)
    for n in reversed(graph.node):
        if n.op_type in ("Gemm", "MatMul") and id(n) in reaching:
            candidates = [i for i in n.input[:2] if i in live]
            if n.op_type == "Gemm" and n.input[0] in live:
                return n.input[0], n
            if candidates:
                return candidates[0], n
    raise ValueError("no Gemm/MatMul node with a data input reaches a graph output")


def _session(model_path, threads=2):
    """An ONNX Runtime session over a copy of the model whose extra output is the feature value."""
    import onnx
    import onnxruntime as ort
    model = onnx.load(model_path, load_external_data=True)  # external data from the model's folder
    feature, node = find_feature(model)
    if feature not in {o.name for o in model.graph.output}:
        elem = onnx.TensorProto.FLOAT
        try:
            inferred = onnx.shape_inference.infer_shapes(model)
            for vi in list(inferred.graph.value_info) + list(inferred.graph.input):
                if vi.name == feature and vi.type.tensor_type.elem_type:
                    elem = vi.type.tensor_type.elem_type
        except Exception:  # noqa: BLE001 (inference is only used for the dtype)
            pass
        model.graph.output.append(onnx.helper.make_tensor_value_info(feature, elem, None))
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")  # busy shared machines
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess, feature, node


def features_and_logits(model_path, x, batch=1000, threads=2, _cached=None):
    """Penultimate features [N, F] (flattened past the batch axis) and logits [N, classes]."""
    sess, feature, node = _cached or _session(model_path, threads)
    inp = sess.get_inputs()[0].name
    out_names = [sess.get_outputs()[0].name, feature]
    feats, logits = [], []
    for i in range(0, len(x), batch):
        lo, fe = sess.run(out_names, {inp: _scaled(x[i:i + batch])})
        logits.append(lo.reshape(len(lo), -1))
        feats.append(fe.reshape(len(fe), -1))
    return np.concatenate(feats), np.concatenate(logits), feature, node


def fit_probe(model_path, train, test, threads=2):
    """Fits the probe on `train` features; returns its and the model's predictions on `test`."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    xtr, ytr = _as_xy(train)
    xte, yte = _as_xy(test)
    cached = _session(model_path, threads)
    ftr, _, feature, node = features_and_logits(model_path, xtr, _cached=cached)
    fte, logits, _, _ = features_and_logits(model_path, xte, _cached=cached)
    scaler = StandardScaler().fit(ftr.astype(np.float64))
    clf = LogisticRegression(C=1.0, solver="lbfgs", max_iter=2000, random_state=0)
    clf.fit(scaler.transform(ftr.astype(np.float64)), ytr)
    return {
        "probePred": clf.predict(scaler.transform(fte.astype(np.float64))),
        "modelPred": logits.argmax(1),
        "y": yte,
        "feature": feature,
        "featureNode": node.name or node.op_type,
        "featureDimension": int(ftr.shape[1]),
        "trainSamples": int(len(ytr)),
        "probeIterations": int(np.max(clf.n_iter_)),
    }


def measure(fit, forget):
    """The probe's and the model's accuracies for one forget set, from a fit_probe result."""
    forget = [forget] if np.isscalar(forget) else [int(c) for c in forget]
    y, pred, model_pred = fit["y"], fit["probePred"], fit["modelPred"]
    is_f = np.isin(y, forget)

    def acc(p, m):
        return float((p[m] == y[m]).mean()) if m.any() else float("nan")
    every = np.ones(len(y), bool)
    out = {k: v for k, v in fit.items() if k not in ("probePred", "modelPred", "y")}
    out.update({
        "forget": forget,
        "testSamples": int(len(y)),
        "forgetTestSamples": int(is_f.sum()),
        "probeForgetAccuracy": acc(pred, is_f),
        "probeAccuracy": acc(pred, every),
        "probeRetainAccuracy": acc(pred, ~is_f),
        "modelAccuracy": acc(model_pred, every),
        "modelRetainAccuracy": acc(model_pred, ~is_f),
        "modelForgetAccuracy": acc(model_pred, is_f),
    })
    return out


def probe_recovery(model_path, train, test, forget, threads=2):
    """Fits the probe on `train` features and measures it on `test`; see the module docstring."""
    t0 = time.time()
    r = measure(fit_probe(model_path, train, test, threads), forget)
    r["model"] = str(model_path)
    r["seconds"] = round(time.time() - t0, 3)
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--train", required=True, help="probe training data .npz (x, y)")
    ap.add_argument("--test", required=True, help="probe test data .npz (x, y)")
    ap.add_argument("--forget", required=True, help="forgotten class(es), comma-separated")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    forget = [int(c) for c in args.forget.split(",")]
    r = probe_recovery(args.model, args.train, args.test, forget, args.threads)
    if args.json:
        print(json.dumps(r))
    else:
        print(f"model {r['model']}  features {r['feature']} [N,{r['featureDimension']}] (input of {r['featureNode']})")
        print(f"probe recovery (class {args.forget}, {r['forgetTestSamples']} test samples): "
              f"{r['probeForgetAccuracy'] * 100:.2f}%")
        print(f"probe accuracy (all {r['testSamples']} test samples): {r['probeAccuracy'] * 100:.2f}%")
        print(f"model: ACC_r {r['modelRetainAccuracy'] * 100:.2f}%  ACC_f {r['modelForgetAccuracy'] * 100:.2f}%  "
              f"({r['seconds']:.1f}s)")


if __name__ == "__main__":
    main()
