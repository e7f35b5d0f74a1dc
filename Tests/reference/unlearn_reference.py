#!/usr/bin/env python3
"""Independent reference implementation of Lethe's gradient-free class unlearning (DESIGN.md §4).

Written from the formulas with PyTorch forward hooks and NumPy in float64; it shares no code with the
Swift implementation. For every weight layer (nn.Conv2d, nn.Linear) of a PyTorch module:

  rows x      Conv2d: one row per output position = the receptive-field patch taken with the layer's own
              padding/stride/dilation (torch.nn.functional.unfold), flattened in the order (C, kh, kw),
              one statistics matrix per group. Linear: every vector that meets the weight (all tokens).
  G           Σ x xᵀ over all rows, float64, not mean-centred; retain and forget separately.
  spaces      G = U diag(σ²) Uᵀ (numpy.linalg.eigh; tiny negative eigenvalues from rounding clamp to 0),
              s_i = σ_i² / Σ_j σ_j², λ_i = α s_i / ((α − 1) s_i + 1), M = U diag(λ) Uᵀ.
  patch       W_new = W − W (I − M_r) M_f  for W (O × d, acting as W·x; a Conv weight O × C/g × kh × kw is
              reshaped per group to (O/g) × (C/g·kh·kw)). Biases and every other tensor stay unchanged.

The forward pass for the statistics runs in float64 (model.double()) on the inputs converted to float64
(uint8 images: /255 in float64), so this is the exact value the float32 Swift pipeline approximates.

Fixtures written to formats/models/unlearn/ (see Tests/reference/README.md):
  fashion_cnn.*          sample CNN, explicit sets: retain = first 30 of each class ≠ 3 of
                         samples/fashion_train.npz, forget = first 30 of class 3; α_r = 100, α_f = 3
  fashion_cnn_default.*  sample CNN, DESIGN defaults for `--forget 3` on fashion_train.npz: S = 900,
                         retain = first 100 of each class ≠ 3, forget = all 300 of class 3; α_r = 100, α_f = 3
  vit.*                  small ViT of formats/models (vit_ts.onnx), 40 retain / 20 forget seeded random
                         inputs; α_r = 100, α_f = 3

Usage:
  /work/pyenv/bin/python Tests/reference/unlearn_reference.py              # regenerate all fixtures
  /work/pyenv/bin/python Tests/reference/unlearn_reference.py --check      # recompute, compare to files
  As a library: `reference_patch(model, retain_x, forget_x, alpha_r, alpha_f)` → {param name: new weight}.
"""
import argparse
import importlib.util
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "formats", "models", "unlearn")


def _load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ----------------------------------------------------------------------------------------------------
# The method
# ----------------------------------------------------------------------------------------------------

def weight_layers(model):
    """(name, module) of every Conv2d / Linear, in module order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def layer_rows(module, x):
    """The rows x ∈ R^d the layer's weight meets, as a list (one per group) of float64 arrays (rows × d)."""
    x = x.detach().to(torch.float64)
    if isinstance(module, nn.Linear):
        return [x.reshape(-1, module.in_features).numpy()]
    if module.padding_mode != "zeros":
        raise NotImplementedError("only zero padding")
    if isinstance(module.padding, str):
        raise NotImplementedError("string padding")
    # unfold gives (N, C·kh·kw, L) with the channel-major (C, kh, kw) order of the weight's flattening.
    cols = F.unfold(x, module.kernel_size, dilation=module.dilation, padding=module.padding,
                    stride=module.stride)
    n, ckk, length = cols.shape
    g = module.groups
    per = ckk // g
    rows = cols.permute(0, 2, 1).reshape(n * length, ckk)
    return [rows[:, i * per:(i + 1) * per].numpy() for i in range(g)]


def collect_stats(model, inputs, batch=100):
    """G = Σ x xᵀ (float64) per weight layer and group, one pass over `inputs` (float64 tensor)."""
    layers = weight_layers(model)
    stats = {}
    counts = {}
    handles = []

    def hook_for(name, module):
        def hook(mod, args):
            groups = layer_rows(mod, args[0])
            if name not in stats:
                stats[name] = [np.zeros((r.shape[1], r.shape[1])) for r in groups]
                counts[name] = 0
            for acc, r in zip(stats[name], groups):
                acc += r.T @ r
            counts[name] += groups[0].shape[0]
        return hook

    for name, module in layers:
        handles.append(module.register_forward_pre_hook(hook_for(name, module)))
    try:
        with torch.no_grad():
            for i in range(0, inputs.shape[0], batch):
                model(inputs[i:i + batch])
    finally:
        for h in handles:
            h.remove()
    return stats, counts


def space(G, alpha):
    """M = U diag(λ) Uᵀ with λ_i = α s_i / ((α − 1) s_i + 1), s_i = σ_i² / Σσ²."""
    sig2, U = np.linalg.eigh(G)
    sig2 = np.clip(sig2, 0.0, None)
    total = sig2.sum()
    if total <= 0:
        return np.zeros_like(G)
    s = sig2 / total
    lam = alpha * s / ((alpha - 1.0) * s + 1.0)
    return (U * lam) @ U.T


def patch_weight(W, Ms_r, Ms_f):
    """W_new = W − W (I − M_r) M_f per group; W is a torch weight (O × d or O × C/g × kh × kw), float64."""
    groups = len(Ms_r)
    O = W.shape[0]
    flat = W.reshape(O, -1)
    out = np.empty_like(flat)
    og = O // groups
    for g in range(groups):
        Wg = flat[g * og:(g + 1) * og]
        d = Wg.shape[1]
        out[g * og:(g + 1) * og] = Wg - Wg @ (np.eye(d) - Ms_r[g]) @ Ms_f[g]
    return out.reshape(W.shape)


def reference_patch(model, retain_x, forget_x, alpha_r, alpha_f):
    """Returns ({weight param name: patched float64 array}, info). `model` is left unchanged."""
    m64 = _double_copy(model)
    g_r, n_r = collect_stats(m64, retain_x.to(torch.float64))
    g_f, n_f = collect_stats(m64, forget_x.to(torch.float64))
    patched, info = {}, {}
    for name, module in weight_layers(m64):
        Ms_r = [space(G, alpha_r) for G in g_r[name]]
        Ms_f = [space(G, alpha_f) for G in g_f[name]]
        W = module.weight.detach().numpy()
        patched[name + ".weight"] = patch_weight(W, Ms_r, Ms_f)
        info[name] = {
            "kind": "Conv" if isinstance(module, nn.Conv2d) else "Linear",
            "weight": name + ".weight",
            "weight_shape": list(W.shape),
            "groups": len(Ms_r),
            "d": int(g_r[name][0].shape[0]),
            "rows_retain": int(n_r[name]),
            "rows_forget": int(n_f[name]),
            "trace_G_retain": [float(np.trace(G)) for G in g_r[name]],
            "trace_G_forget": [float(np.trace(G)) for G in g_f[name]],
            "max_abs_change": float(np.abs(patched[name + ".weight"] - W).max()),
            "relative_change": float(np.linalg.norm(patched[name + ".weight"] - W) / np.linalg.norm(W)),
        }
    return patched, info, (g_r, g_f)


def _double_copy(model):
    import copy
    return copy.deepcopy(model).double().eval()


# ----------------------------------------------------------------------------------------------------
# ONNX plumbing (name mapping between the exports and the torch parameters)
# ----------------------------------------------------------------------------------------------------

def onnx_initializers(path):
    """{name: array} of a model's initializers, plus {Identity output: initializer} aliases."""
    import onnx
    from onnx import numpy_helper
    m = onnx.load(path)
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    aliases = {n.output[0]: n.input[0] for n in m.graph.node if n.op_type == "Identity" and n.input[0] in inits}
    return m, inits, aliases


def load_from_onnx(model, path):
    """Copies the ONNX initializers into the module's state_dict by name (following Identity aliases)."""
    _, inits, aliases = onnx_initializers(path)
    sd = model.state_dict()
    new = {}
    for k, v in sd.items():
        src = k if k in inits else aliases.get(k)
        if src is None:
            if k.endswith("num_batches_tracked"):
                new[k] = v
                continue
            raise KeyError(f"{path}: no initializer for {k}")
        arr = inits[src]
        if tuple(arr.shape) != tuple(v.shape):
            raise ValueError(f"{path}: {src} has shape {arr.shape}, module wants {tuple(v.shape)}")
        new[k] = torch.from_numpy(arr.copy())
    model.load_state_dict(new)
    return model.eval()


def weight_map(model, path):
    """For each weight layer, how the ONNX file stores its weight: name, transposed (d × O, x·B form) or not,
    whether the values are the parameter's own or a per-output-row scaled copy (BatchNorm folded),
    and which node consumes it."""
    m, inits, aliases = onnx_initializers(path)
    consumers = {}
    for n in m.graph.node:
        for i, name in enumerate(n.input):
            consumers.setdefault(name, []).append((n, i))
    out = {}
    for lname, module in weight_layers(model):
        W = module.weight.detach().numpy()
        pname = lname + ".weight"
        entry = None
        if pname in inits and inits[pname].shape == W.shape:
            same = np.array_equal(inits[pname], W)
            entry = {"onnx_initializer": pname, "transposed": False,
                     "values": "equal" if same else "rows scaled (BatchNorm folded)"}
        elif W.ndim == 2:
            for iname, arr in inits.items():
                if arr.shape == W.T.shape and np.array_equal(arr, W.T):
                    entry = {"onnx_initializer": iname, "transposed": True, "values": "equal (transposed)"}
                    break
        if entry is None:
            raise KeyError(f"{path}: cannot find the initializer of {pname}")
        uses = []
        for node, idx in consumers.get(entry["onnx_initializer"], []):
            use = {"op": node.op_type, "input": idx}
            if node.op_type == "Transpose":
                use["then"] = [c.op_type for c, _ in consumers.get(node.output[0], [])]
            if node.op_type == "Gemm":
                use["transB"] = next((a.i for a in node.attribute if a.name == "transB"), 0)
            uses.append(use)
        entry["consumers"] = uses
        entry["torch_param"] = pname
        out[pname] = entry
    return out


def patch_onnx_initializers(path, model, patched64):
    """All initializers of `path` with the patch applied to each weight layer's stored tensor (float32).

    The projection acts on the input side, so it applies unchanged to a row-scaled (BatchNorm-folded)
    weight, and as B_new = P B = (W_new)ᵀ form to a transposed one: both computed from the stored value."""
    _, inits, _ = onnx_initializers(path)
    wmap = weight_map(model, path)
    out = {k: v.copy() for k, v in inits.items()}
    m64 = {n: mod for n, mod in weight_layers(model)}
    for pname, e in wmap.items():
        W = m64[pname[:-len(".weight")]].weight.detach().numpy().astype(np.float64)
        delta = patched64[pname] - W  # = −W (I − M_r) M_f, linear in W's rows
        stored = inits[e["onnx_initializer"]].astype(np.float64)
        if e["transposed"]:
            new = stored + delta.T
        elif e["values"] == "equal":
            new = patched64[pname]
        else:
            # folded: stored = diag(c)·W, so the patch of the stored tensor is diag(c)·W_new.
            flatW = W.reshape(W.shape[0], -1)
            flatS = stored.reshape(W.shape[0], -1)
            c = np.array([(s @ w) / (w @ w) if (w @ w) > 0 else 0.0 for s, w in zip(flatS, flatW)])
            new = (c[:, None] * patched64[pname].reshape(W.shape[0], -1)).reshape(W.shape)
        out[e["onnx_initializer"]] = new.astype(np.float32)
    return out, wmap


def run_onnx_with(path, initializers, x):
    """ONNX Runtime output of `path` with its initializers replaced by `initializers`."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper
    m = onnx.load(path)
    for init in m.graph.initializer:
        if init.name in initializers:
            init.CopyFrom(numpy_helper.from_array(initializers[init.name], init.name))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    outs = []
    for i in range(0, len(x), 500):
        outs.append(sess.run(None, {sess.get_inputs()[0].name: x[i:i + 500]})[0])
    return np.concatenate(outs)


# ----------------------------------------------------------------------------------------------------
# Fixtures
# ----------------------------------------------------------------------------------------------------

def fashion_model():
    sample = _load_module(os.path.join(ROOT, "samples", "make_sample.py"), "make_sample")
    model = sample.FashionCNN()
    return load_from_onnx(model, os.path.join(ROOT, "samples", "fashion_cnn.onnx"))


def vit_model():
    mm = _load_module(os.path.join(ROOT, "formats", "models", "make_models.py"), "make_models")
    model = mm.build("vit")
    return load_from_onnx(model, os.path.join(ROOT, "formats", "models", "vit_ts.onnx"))


def first_per_class(y, classes, per_class):
    return np.concatenate([np.flatnonzero(y == c)[:per_class] for c in classes])


def accuracy_by_class(logits, y):
    pred = logits.argmax(1)
    return {int(c): float((pred[y == c] == c).mean()) for c in np.unique(y)}


def write_fixture(stem, model, onnx_path, retain_x, forget_x, alpha_r, alpha_f, extra, dynamo_paths=(),
                  stats_max_d=256, check=False):
    patched64, info, (g_r, g_f) = reference_patch(model, retain_x, forget_x, alpha_r, alpha_f)
    inits, wmap = patch_onnx_initializers(onnx_path, model, patched64)
    _, orig, _ = onnx_initializers(onnx_path)
    patched_names = [e["onnx_initializer"] for e in wmap.values()]
    meta = {
        "onnx": os.path.relpath(onnx_path, ROOT),
        "alpha_retain": alpha_r,
        "alpha_forget": alpha_f,
        "forward_dtype": "float64",
        "patched": patched_names,
        "unpatched": [k for k in orig if k not in patched_names],
        "layers": info,
        "weight_map": wmap,
    }
    meta.update(extra)
    arrays = {f"{stem}.patched.npz": {k: inits[k] for k in orig}}
    stats = {}
    for name in info:
        for g, (Gr, Gf) in enumerate(zip(g_r[name], g_f[name])):
            if Gr.shape[0] <= stats_max_d:
                suffix = "" if len(g_r[name]) == 1 else f".group{g}"
                stats[f"{name}{suffix}.retain"] = Gr
                stats[f"{name}{suffix}.forget"] = Gf
    arrays[f"{stem}.stats.npz"] = stats
    meta["stats_layers"] = sorted({k.rsplit(".", 1)[0] for k in stats})
    for dpath in dynamo_paths:
        dinits, dmap = patch_onnx_initializers(dpath, model, patched64)
        dstem = os.path.splitext(os.path.basename(dpath))[0]
        meta.setdefault("other_exports", {})[dstem] = {
            "onnx": os.path.relpath(dpath, ROOT), "patched_file": f"{stem}.{dstem}.patched.npz",
            "weight_map": dmap}
        arrays[f"{stem}.{dstem}.patched.npz"] = {k: dinits[k] for k in dinits}
    return patched64, inits, meta, arrays


def save_or_check(arrays, jsons, check):
    ok = True
    for fname, arrs in arrays.items():
        path = os.path.join(OUT, fname)
        if check:
            old = np.load(path)
            for k, v in arrs.items():
                if k not in old or old[k].shape != v.shape:
                    print(f"MISMATCH {fname}:{k} missing or shape", file=sys.stderr)
                    ok = False
                    continue
                diff = np.abs(old[k].astype(np.float64) - v.astype(np.float64)).max() if v.size else 0.0
                scale = max(1e-30, float(np.abs(v).max())) if v.size else 1.0
                if diff / scale > 1e-6:
                    print(f"MISMATCH {fname}:{k} rel {diff / scale:.3e}", file=sys.stderr)
                    ok = False
        else:
            np.savez(path, **arrs)
    for fname, obj in jsons.items():
        if not check:
            with open(os.path.join(OUT, fname), "w") as f:
                json.dump(obj, f, indent=1)
                f.write("\n")
    return ok


def fashion_fixtures(check):
    model = fashion_model()
    onnx_path = os.path.join(ROOT, "samples", "fashion_cnn.onnx")
    dyn_path = os.path.join(ROOT, "samples", "fashion_cnn_dynamo.onnx")
    train = np.load(os.path.join(ROOT, "samples", "fashion_train.npz"))
    test = np.load(os.path.join(ROOT, "samples", "fashion_test.npz"))
    xtr, ytr = train["x"], train["y"]
    xte, yte = test["x"], test["y"]
    to64 = lambda a: torch.from_numpy(a.astype(np.float64) / 255.0)
    forget_class = 3
    keep = [c for c in range(10) if c != forget_class]
    ok = True
    configs = [
        ("fashion_cnn", first_per_class(ytr, keep, 30), first_per_class(ytr, [forget_class], 30), True),
        ("fashion_cnn_default", first_per_class(ytr, keep, 100), first_per_class(ytr, [forget_class], 900), False),
    ]
    for stem, r_idx, f_idx, save_sets in configs:
        with torch.no_grad():
            before = model(torch.from_numpy(xte.astype(np.float32) / 255.0)).numpy()
        extra = {
            "data": "samples/fashion_train.npz",
            "forget_classes": [forget_class],
            "retain_indices": r_idx.tolist(),
            "forget_indices": f_idx.tolist(),
            "input_scale": "x / 255",
        }
        if save_sets:
            extra["retain_file"] = f"{stem}.retain.npz"
            extra["forget_file"] = f"{stem}.forget.npz"
        # The dynamo export's patch (BatchNorm-folded conv weights) is kept for the explicit-set fixture only.
        patched64, inits, meta, arrays = write_fixture(stem, model, onnx_path, to64(xtr[r_idx]), to64(xtr[f_idx]),
                                                       100.0, 3.0, extra, dynamo_paths=[dyn_path])
        after = run_onnx_with(onnx_path, inits, xte.astype(np.float32) / 255.0)
        dyn_file = f"{stem}.fashion_cnn_dynamo.patched.npz"
        after_dyn = run_onnx_with(dyn_path, arrays[dyn_file], xte.astype(np.float32) / 255.0)
        if not save_sets:
            del arrays[dyn_file]
            del meta["other_exports"]
        acc_b, acc_a = accuracy_by_class(before, yte), accuracy_by_class(after, yte)
        meta["test_accuracy_fashion_test_npz"] = {
            "before": {"per_class": acc_b, "ACC_r": float(np.mean([acc_b[c] for c in keep])),
                       "ACC_f": acc_b[forget_class]},
            "after_onnxruntime": {"per_class": acc_a, "ACC_r": float(np.mean([acc_a[c] for c in keep])),
                                  "ACC_f": acc_a[forget_class]},
            "dynamo_export_patched_max_abs_logit_diff": float(np.abs(after_dyn - after).max()),
        }
        jsons = {f"{stem}.json": meta}
        if save_sets:
            arrays[f"{stem}.retain.npz"] = {"x": xtr[r_idx], "y": ytr[r_idx]}
            arrays[f"{stem}.forget.npz"] = {"x": xtr[f_idx], "y": ytr[f_idx]}
        ok &= save_or_check(arrays, jsons, check)
        t = meta["test_accuracy_fashion_test_npz"]
        print(f"{stem}: retain {len(r_idx)} forget {len(f_idx)}: ACC_r {t['before']['ACC_r']:.4f} -> "
              f"{t['after_onnxruntime']['ACC_r']:.4f}, ACC_f {t['before']['ACC_f']:.4f} -> "
              f"{t['after_onnxruntime']['ACC_f']:.4f}; dynamo patched vs ts patched logits "
              f"{t['dynamo_export_patched_max_abs_logit_diff']:.2e}")
    return ok


def vit_fixture(check):
    model = vit_model()
    onnx_path = os.path.join(ROOT, "formats", "models", "vit_ts.onnx")
    dyn_path = os.path.join(ROOT, "formats", "models", "vit_dynamo.onnx")
    rng = np.random.default_rng(2024)
    retain = rng.standard_normal((40, 3, 32, 32)).astype(np.float32)
    # The forget inputs share a fixed pattern, so their statistics differ from the retain ones.
    pattern = rng.standard_normal((1, 3, 32, 32)).astype(np.float32)
    forget = (rng.standard_normal((20, 3, 32, 32)) * 0.5 + pattern).astype(np.float32)
    extra = {"retain_file": "vit.retain.npz", "forget_file": "vit.forget.npz",
             "input_scale": "none (float32 inputs used as they are)"}
    patched64, inits, meta, arrays = write_fixture("vit", model, onnx_path, torch.from_numpy(retain),
                                                   torch.from_numpy(forget), 100.0, 3.0, extra,
                                                   dynamo_paths=[dyn_path])
    probe = np.concatenate([retain[:4], forget[:4]])
    out_ts = run_onnx_with(onnx_path, inits, probe)
    out_dyn = run_onnx_with(dyn_path, arrays["vit.vit_dynamo.patched.npz"], probe)
    pm = _double_copy(model)
    with torch.no_grad():
        for name, mod in weight_layers(pm):
            mod.weight.copy_(torch.from_numpy(patched64[name + ".weight"]))
        out_torch = pm(torch.from_numpy(probe).double()).numpy()
    meta["check"] = {"probe": "first 4 retain + first 4 forget inputs",
                     "max_abs_ts_patched_vs_torch64": float(np.abs(out_ts - out_torch).max()),
                     "max_abs_dynamo_patched_vs_torch64": float(np.abs(out_dyn - out_torch).max())}
    arrays["vit.retain.npz"] = {"x": retain, "y": np.zeros(40, dtype=np.int64)}
    arrays["vit.forget.npz"] = {"x": forget, "y": np.ones(20, dtype=np.int64)}
    ok = save_or_check(arrays, {"vit.json": meta}, check)
    if not check:
        with open(os.path.join(OUT, "vit_dynamo_weight_map.json"), "w") as f:
            json.dump(meta["other_exports"]["vit_dynamo"]["weight_map"], f, indent=1)
            f.write("\n")
    print(f"vit: {meta['check']}")
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true", help="recompute and compare with the committed fixtures")
    ap.add_argument("--only", default="fashion,vit")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    ok = True
    if "fashion" in args.only:
        ok &= fashion_fixtures(args.check)
    if "vit" in args.only:
        ok &= vit_fixture(args.check)
    if args.check:
        print("fixtures match" if ok else "fixtures DIFFER")
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
