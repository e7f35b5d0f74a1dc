#!/usr/bin/env python3
"""PyTorch reference approach to the unlearning method, timed, for comparison with `lethe unlearn`.

This is how the published code works: forward hooks store every layer's input rows as activation
matrices X (rows × d, float32), `torch.linalg.svd(X)` gives the spaces (σ², V), and the same projection
as DESIGN.md §4 patches each weight: W_new = W − W (I − M_r) M_f. All rows are kept (no sub-sampling:
every map of the sample CNN has ≤ 1024 positions), so the result equals Lethe's Gram-based method up to
float32 rounding; `--max-rows N` mimics the published random row cap instead.

Default run: the sample CNN (samples/fashion_cnn.safetensors + architecture from samples/make_sample.py),
forgetting class 3 with S = 900 from samples/fashion_train.npz: retain = first 100 of each other class
(900), forget = all 300 class-3 samples (fewer than S exist). α_r = 100, α_f = 3. `--model vit` runs
the sample ViT instead (samples/fashion_vit.safetensors + samples/make_vit_sample.py): its patch
embedding and every Linear, the head included, with every token a row. `--compare PATCHED.onnx`
reports the largest relative difference between the reference's patched weights and that file's
initializers of the same names (e.g. `lethe unlearn … --method published`'s output). `--autocast
bfloat16` runs the forward passes under `torch.autocast("cpu", dtype=torch.bfloat16)` (the rows kept
as float32, the SVDs and the patch as before): the counterpart of `lethe unlearn --precision bfloat16`.

Prints one summary line (and `--json` prints a JSON document instead), e.g.
  reference_bench: model=fashion_cnn S=900 retain=900 forget=300 layers=4 threads=2 collect=…s svd=…s
  patch=…s total=…s peak_rss=…MB max_rel_diff_vs_fixture=…
"""
import argparse
import importlib.util
import json
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


MODELS = {"cnn": ("make_sample.py", "FashionCNN", "fashion_cnn.safetensors"),
          "vit": ("make_vit_sample.py", "FashionViT", "fashion_vit.safetensors")}
# ImageNet-size models: the seeded random-init torchvision models that bench/runtime/make_models.py exports
IMAGENET_MODELS = ("resnet18_224", "vit_b16")


def load_imagenet_model(name):
    spec = importlib.util.spec_from_file_location("make_models", os.path.join(ROOT, "bench", "runtime",
                                                                              "make_models.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.build(name)


def load_sample_model(name):
    if name in IMAGENET_MODELS:
        return load_imagenet_model(name)
    script, cls, weights = MODELS[name]
    spec = importlib.util.spec_from_file_location(script[:-3], os.path.join(ROOT, "samples", script))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    from safetensors.torch import load_file
    model = getattr(mod, cls)()
    missing, unexpected = model.load_state_dict(load_file(os.path.join(ROOT, "samples", weights)), strict=False)
    if unexpected or any(not k.endswith("num_batches_tracked") for k in missing):
        raise SystemExit(f"weights do not match the architecture: missing {missing}, unexpected {unexpected}")
    return model.eval()


def collect(model, x, batch, max_rows, gen, autocast=False):
    """Activation matrices (rows × d, float32) of every Conv2d/Linear input, gathered by forward hooks.

    With `max_rows`, each batch keeps a uniform random share of its rows (max_rows over the layer's rows
    in all N samples), so the matrices never hold more than about max_rows rows: the published code's
    cap, and what keeps an ImageNet-size collection in memory. nn.MultiheadAttention calls its projections' weights directly
    (no Linear module runs), so its hook gathers the rows of both: the query rows for `in_proj` and the
    attention context (recomputed here, one extra attention per block) for `out_proj`.
    """
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))
              and not (isinstance(m, nn.modules.linear.NonDynamicallyQuantizableLinear))]
    attention = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.MultiheadAttention)]
    names = [n for n, _ in layers] + [n + suffix for n, _ in attention for suffix in (".in_proj", ".out_proj")]
    acts = {n: [] for n in names}
    def keep(name, rows, images):
        share = min(1.0, max_rows / (rows.shape[0] / images * len(x))) if max_rows else 1.0
        if share < 1.0:
            rows = rows[torch.randperm(rows.shape[0], generator=gen)[:max(1, round(rows.shape[0] * share))]]
        acts[name].append(rows.float().clone())

    def hook_for(name):
        def hook(mod, args):
            inp = args[0]
            if isinstance(mod, nn.Conv2d):
                if mod.groups != 1:
                    raise NotImplementedError("grouped conv")
                cols = F.unfold(inp, mod.kernel_size, dilation=mod.dilation, padding=mod.padding, stride=mod.stride)
                rows = cols.transpose(1, 2).reshape(-1, cols.shape[1])
            else:
                rows = inp.reshape(-1, mod.in_features)
            keep(name, rows, inp.shape[0])
        return hook

    def attention_hook_for(name):
        def hook(mod, args, kwargs):
            query = args[0]
            if not (mod.batch_first and mod._qkv_same_embed_dim):
                raise NotImplementedError("attention layout")
            keep(name + ".in_proj", query.reshape(-1, mod.embed_dim), query.shape[0])
            q, k, v = F.linear(query, mod.in_proj_weight, mod.in_proj_bias).chunk(3, dim=-1)
            b, t, e = q.shape
            h = mod.num_heads
            split = lambda z: z.reshape(b, t, h, e // h).transpose(1, 2)
            context = F.scaled_dot_product_attention(split(q), split(k), split(v))
            keep(name + ".out_proj", context.transpose(1, 2).reshape(-1, e), b)
        return hook

    handles = [m.register_forward_pre_hook(hook_for(n)) for n, m in layers]
    handles += [m.register_forward_pre_hook(attention_hook_for(n), with_kwargs=True) for n, m in attention]
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        for i in range(0, len(x), batch):
            model(x[i:i + batch])
    for h in handles:
        h.remove()
    out = {}
    for n, parts in acts.items():
        X = torch.cat(parts)
        if max_rows and X.shape[0] > max_rows:
            X = X[torch.randperm(X.shape[0], generator=gen)[:max_rows]]
        out[n] = X
    return names, out


def space(X, alpha):
    """M = V diag(λ) Vᵀ from the SVD of the activation matrix X (σ² are the Gram's eigenvalues)."""
    _, S, Vh = torch.linalg.svd(X, full_matrices=False)
    s = S.double() ** 2
    s = s / s.sum()
    lam = alpha * s / ((alpha - 1) * s + 1)
    V = Vh.T.double()
    return (V * lam) @ V.T


def weight_of(model, name):
    """The parameter a collected layer's rows meet, and its state-dict name."""
    modules = dict(model.named_modules())
    if name.endswith(".in_proj"):
        prefix = name[:-len(".in_proj")]
        return modules[prefix].in_proj_weight, prefix + ".in_proj_weight"
    if name.endswith(".out_proj") and isinstance(modules.get(name[:-len(".out_proj")]), nn.MultiheadAttention):
        return modules[name].weight, name + ".weight"
    return modules[name].weight, name + ".weight"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=sorted(MODELS) + list(IMAGENET_MODELS), default="cnn")
    ap.add_argument("--compare", help="a patched .onnx to compare the reference's weights with")
    ap.add_argument("--data", default=os.path.join(ROOT, "samples", "fashion_train.npz"))
    ap.add_argument("--forget", type=int, default=3)
    ap.add_argument("--samples", type=int, default=900)
    ap.add_argument("--alpha-retain", type=float, default=100.0)
    ap.add_argument("--alpha-forget", type=float, default=3.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--max-rows", type=int, default=0, help="random row cap per layer (0 = all rows)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fixture", default=os.path.join(ROOT, "formats", "models", "unlearn",
                                                      "fashion_cnn_default.patched.npz"))
    ap.add_argument("--autocast", choices=["none", "bfloat16"], default="none",
                    help="run the forward passes under torch.autocast in bfloat16")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(args.seed)

    t_start = time.perf_counter()
    model = load_sample_model(args.model)
    d = np.load(args.data)
    x, y = d["x"], d["y"]
    keep = [c for c in np.unique(y) if c != args.forget]
    per = args.samples // len(keep)
    r_idx = np.concatenate([np.flatnonzero(y == c)[:per] for c in keep])
    f_idx = np.flatnonzero(y == args.forget)[:args.samples]
    to_f = lambda a: torch.from_numpy(a.astype(np.float32) / np.float32(255.0)) if a.dtype == np.uint8 \
        else torch.from_numpy(a.astype(np.float32))
    xr, xf = to_f(x[r_idx]), to_f(x[f_idx])
    t_load = time.perf_counter()

    autocast = args.autocast == "bfloat16"
    layers, acts_r = collect(model, xr, args.batch, args.max_rows, gen, autocast)
    _, acts_f = collect(model, xf, args.batch, args.max_rows, gen, autocast)
    t_collect = time.perf_counter()

    spaces = {n: (space(acts_r[n], args.alpha_retain), space(acts_f[n], args.alpha_forget)) for n in layers}
    t_svd = time.perf_counter()

    patched = {}
    with torch.no_grad():
        for n in layers:
            Mr, Mf = spaces[n]
            weight, key = weight_of(model, n)
            W = weight.detach().double().reshape(weight.shape[0], -1)
            Wn = W - W @ (torch.eye(W.shape[1], dtype=torch.float64) - Mr) @ Mf
            patched[key] = Wn.reshape(weight.shape).float()
            weight.copy_(patched[key])
    t_patch = time.perf_counter()

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    result = {
        "model": args.model if args.model in IMAGENET_MODELS else "fashion_" + args.model, "S": args.samples, "retain": int(len(r_idx)), "forget": int(len(f_idx)),
        "layers": len(layers), "threads": args.threads, "max_rows": args.max_rows or "all",
        "autocast": args.autocast,
        "rows": {n: int(acts_r[n].shape[0] + acts_f[n].shape[0]) for n in layers},
        "load_s": t_load - t_start, "collect_s": t_collect - t_load, "svd_s": t_svd - t_collect,
        "patch_s": t_patch - t_svd, "total_s": t_patch - t_start, "unlearn_s": t_patch - t_load,
        "peak_rss_mb": peak_mb,
    }
    if args.compare:
        import onnx
        from onnx import numpy_helper
        ours = {t.name: numpy_helper.to_array(t) for t in onnx.load(args.compare).graph.initializer}
        common = [k for k in patched if k in ours]
        if len(common) != len(patched):
            raise SystemExit(f"{args.compare} lacks {sorted(set(patched) - set(ours))}")
        result["max_rel_diff_vs_compare"] = max(
            float(np.abs(patched[k].numpy() - ours[k]).max() / np.abs(patched[k].numpy()).max()) for k in common)
    if args.model == "cnn" and os.path.exists(args.fixture) and args.max_rows == 0 and args.samples == 900 \
            and args.forget == 3:
        ref = np.load(args.fixture)
        result["max_rel_diff_vs_fixture"] = max(
            float(np.abs(patched[k].numpy() - ref[k]).max() / np.abs(ref[k]).max()) for k in patched)
    if args.json:
        print(json.dumps(result))
    else:
        extra = "".join(f" {k}={result[k]:.2e}" for k in ("max_rel_diff_vs_fixture", "max_rel_diff_vs_compare")
                        if k in result)
        print(f"reference_bench: model={result['model']} S={args.samples} retain={result['retain']} "
              f"forget={result['forget']} layers={len(layers)} threads={args.threads} "
              f"collect={result['collect_s']:.2f}s svd={result['svd_s']:.2f}s patch={result['patch_s']:.3f}s "
              f"unlearn={result['unlearn_s']:.2f}s total={result['total_s']:.2f}s "
              f"peak_rss={peak_mb:.0f}MB{extra}")


if __name__ == "__main__":
    main()
