#!/usr/bin/env python3
"""Small seeded test models for the ONNX reader and the interpreter, exported with both PyTorch exporters.

Models (input float32 [batch, 3, 32, 32], output `logits` [batch, 10]; batch is dynamic):
  resnet  ResNet-style: BatchNorm, residual adds, stride-2 conv with 1x1 downsample, global average pool, Linear
  vgg     VGG-style: conv stacks, max pooling, dropout, two Linear
  vit     small ViT: 4x4 patch-embedding conv, class token, position embedding, 2 pre-norm blocks with
          hand-written multi-head self-attention (separate q/k/v/proj Linear), LayerNorm, GELU MLP, head

For each model `m` and exporter `e` in {ts, dynamo}, this writes into formats/models/:
  m_e.onnx            TorchScript (dynamo=False, do_constant_folding=False, training=EVAL, opset 17)
                      or dynamo (dynamo=True, opset 17 requested, weights inline)
  m_e.inputs.npz      graph inputs keyed by input name (batch 4, fixed seed)
  m_e.expected.npz    ONNX Runtime outputs keyed by output name
and models.json (inputs, outputs, initializers, op histograms). Weights are random (seeded) with
BatchNorm statistics randomised too, except `resnet.layer2_down_bn`, which keeps PyTorch's defaults on
purpose: its weight/bias equal running_var/running_mean, so the TorchScript exporter emits Identity aliases.

Usage: /work/pyenv/bin/python formats/models/make_models.py [--out DIR] [--only resnet,vgg,vit]
"""
import argparse
import json
import math
import os
import sys
from collections import Counter

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        skip = x if self.down is None else self.down(x)
        return torch.relu(out + skip)


class SmallResNet(nn.Module):
    def __init__(self, width=8, classes=10):
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(width)
        self.layer1 = BasicBlock(width, width, 1)
        self.layer2 = BasicBlock(width, 2 * width, 2)
        self.fc = nn.Linear(2 * width, classes)

    def forward(self, x):
        x = torch.relu(self.stem_bn(self.stem(x)))
        x = self.layer2(self.layer1(x))
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(x)


class SmallVGG(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Dropout(0.5),
            nn.Linear(16 * 8 * 8, 64), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(64, classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


class Attention(nn.Module):
    """Multi-head self-attention with separate q/k/v/proj Linear layers, so ONNX names follow the state_dict."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, t, d = x.shape
        hd = d // self.heads

        def split(y):
            return y.reshape(b, t, self.heads, hd).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        att = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(hd)), dim=-1)
        y = torch.matmul(att, v).transpose(1, 2).reshape(b, t, d)
        return self.proj(y)


class Block(nn.Module):
    def __init__(self, dim, heads, hidden):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(self.act(self.fc1(self.norm2(x))))


class SmallViT(nn.Module):
    def __init__(self, image=32, patch=4, dim=32, depth=2, heads=2, hidden=64, classes=10):
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, patch, stride=patch)
        n = (image // patch) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, n + 1, dim))
        self.blocks = nn.ModuleList([Block(dim, heads, hidden) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.norm(x)[:, 0])


def build(name, seed=0):
    """Builds model `name` with the fixture's seeded weights (the same values every call)."""
    torch.manual_seed(seed)
    if name == "resnet":
        m = SmallResNet()
    elif name == "vgg":
        m = SmallVGG()
    elif name == "vit":
        m = SmallViT()
    else:
        raise ValueError(name)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for mod_name, mod in m.named_modules():
            if isinstance(mod, (nn.BatchNorm2d, nn.LayerNorm)) and mod_name != "layer2.down.1":
                mod.weight.copy_(1.0 + 0.2 * torch.randn(mod.weight.shape, generator=g))
                mod.bias.copy_(0.1 * torch.randn(mod.bias.shape, generator=g))
                if isinstance(mod, nn.BatchNorm2d):
                    mod.running_mean.copy_(0.1 * torch.randn(mod.running_mean.shape, generator=g))
                    mod.running_var.copy_(0.5 + torch.rand(mod.running_var.shape, generator=g))
        if isinstance(m, SmallViT):
            m.cls_token.copy_(0.5 * torch.randn(m.cls_token.shape, generator=g))
            m.pos_embed.copy_(0.5 * torch.randn(m.pos_embed.shape, generator=g))
    return m.eval()


def example_inputs(seed=1234, batch=4):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)


def export_ts(model, x, path):
    torch.onnx.export(model, (torch.from_numpy(x),), path, dynamo=False, do_constant_folding=False,
                      training=torch.onnx.TrainingMode.EVAL, opset_version=17,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})


def export_dynamo(model, x, path):
    batch = torch.export.Dim("batch", min=1, max=1024)
    prog = torch.onnx.export(model, (torch.from_numpy(x),), dynamo=True, opset_version=17,
                             input_names=["input"], output_names=["logits"],
                             dynamic_shapes=({0: batch},))
    if os.path.exists(path):
        os.remove(path)
    prog.save(path, external_data=False)


def describe(path):
    import onnx
    m = onnx.load(path)

    def shape(vi):
        return [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]

    inits = {i.name: list(i.dims) for i in m.graph.initializer}
    aliases = {n.output[0]: n.input[0] for n in m.graph.node if n.op_type == "Identity" and n.input[0] in inits}
    return {
        "opset": {o.domain or "ai.onnx": o.version for o in m.opset_import},
        "ir_version": m.ir_version,
        "inputs": {i.name: shape(i) for i in m.graph.input if i.name not in inits},
        "outputs": {o.name: shape(o) for o in m.graph.output},
        "initializers": inits,
        "identity_aliases": aliases,
        "ops": dict(sorted(Counter(n.op_type for n in m.graph.node).items())),
        "bytes": os.path.getsize(path),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=HERE)
    ap.add_argument("--only", default="resnet,vgg,vit")
    args = ap.parse_args()
    torch.set_num_threads(1)
    import onnxruntime as ort

    os.makedirs(args.out, exist_ok=True)
    x = example_inputs()
    summary = {}
    for name in args.only.split(","):
        model = build(name)
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        for flavour, export in (("ts", export_ts), ("dynamo", export_dynamo)):
            stem = f"{name}_{flavour}"
            path = os.path.join(args.out, stem + ".onnx")
            export(model, x, path)
            so = ort.SessionOptions()
            so.intra_op_num_threads = 1
            sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
            feeds = {sess.get_inputs()[0].name: x}
            outs = sess.run(None, feeds)
            out_names = [o.name for o in sess.get_outputs()]
            np.savez(os.path.join(args.out, stem + ".inputs.npz"), **feeds)
            np.savez(os.path.join(args.out, stem + ".expected.npz"), **dict(zip(out_names, outs)))
            err = float(np.abs(outs[0] - ref).max())
            info = describe(path)
            info["max_abs_diff_vs_torch"] = err
            summary[stem] = info
            print(f"{stem}: {info['bytes']} bytes, ops {info['ops']}, |ort-torch| {err:.2e}", file=sys.stderr)
            if err > 1e-4:
                raise SystemExit(f"{stem}: ONNX Runtime disagrees with PyTorch by {err}")
    with open(os.path.join(args.out, "models.json"), "w") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
