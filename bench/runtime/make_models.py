#!/usr/bin/env python3
"""Exports the runtime/unlearning benchmark models (random seeded init, no downloaded weights).

  resnet18        torchvision-style ResNet-18 (7×7 stride-2 stem + max pool, BasicBlocks [2,2,2,2],
                  widths 64–512), written out here (torchvision is not required), 32×32 input, 10 classes
  resnet18_cifar  the same with the CIFAR stem used by the published CIFAR-10 figures
                  (3×3 stride-1 conv, no max pool): 32×32 feature maps in the first stage
  vit_tiny        ViT-tiny: patch 4, dim 192, depth 12, heads 3, MLP 768, class token, 32×32 input, 10 classes
  resnet18_224    torchvision.models.resnet18(weights=None): 224×224 input, 1000 classes (11.7 M params)
  vit_b16         torchvision.models.vit_b_16(weights=None): 224×224 input, patch 16, dim 768, depth 12,
                  1000 classes (86.6 M params, ≈ 350 MB); its zero-initialised head gets random weights

Nothing is downloaded: the torchvision models are built with weights=None and seeded random init.
Each is exported with the TorchScript exporter (dynamo=False, do_constant_folding=False, training=EVAL,
opset 17, input `input` [batch,3,S,S] with S = 32 or 224, output `logits` [batch,classes], dynamic batch) to OUT/<name>.onnx,
with OUT/<name>.inputs.npz (batch --batch, seeded normal) and OUT/<name>.expected.npz (ONNX Runtime).
`--dynamo` also writes OUT/<name>_dynamo.onnx (+ .onnx.data). The files are large (ResNet-18 ≈ 45 MB):
generate them, never commit them.

Usage: /work/pyenv/bin/python bench/runtime/make_models.py OUT_DIR [--models resnet18,vit_tiny] [--batch 8]
"""
import argparse
import importlib.util
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGENET_SIZE = {"resnet18_224", "vit_b16"}  # 224×224 inputs; the others take 32×32


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """torchvision.models.resnet18 layout and parameter names (conv1, bn1, layer1..4, fc)."""

    def __init__(self, num_classes=10, cifar_stem=False):
        super().__init__()
        if cifar_stem:
            self.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        inplanes = 64
        for i, (planes, stride) in enumerate([(64, 1), (128, 2), (256, 2), (512, 2)]):
            blocks = [BasicBlock(inplanes, planes, stride), BasicBlock(planes, planes, 1)]
            inplanes = planes
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def vit_tiny():
    spec = importlib.util.spec_from_file_location("make_models",
                                                  os.path.join(ROOT, "formats", "models", "make_models.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    m = mod.SmallViT(image=32, patch=4, dim=192, depth=12, heads=3, hidden=768, classes=10)
    with torch.no_grad():
        nn.init.trunc_normal_(m.pos_embed, std=0.02)
        nn.init.trunc_normal_(m.cls_token, std=0.02)
    return m


def build(name, seed=0):
    torch.manual_seed(seed)
    if name == "resnet18":
        m = ResNet18()
    elif name == "resnet18_cifar":
        m = ResNet18(cifar_stem=True)
    elif name == "vit_tiny":
        m = vit_tiny()
    elif name == "resnet18_224":
        import torchvision
        m = torchvision.models.resnet18(weights=None)
    elif name == "vit_b16":
        import torchvision
        m = torchvision.models.vit_b_16(weights=None)
        with torch.no_grad():  # torchvision zero-initialises the head: all logits would be 0
            nn.init.trunc_normal_(m.heads.head.weight, std=0.02)
            nn.init.normal_(m.heads.head.bias, std=0.02)
    else:
        raise SystemExit(f"unknown model {name}")
    # Random BatchNorm statistics and LayerNorm affine parameters, so normalisation is not the identity and no parameter equals another
    # (equal tensors would make the exporter alias them through Identity nodes).
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.LayerNorm):
                mod.weight.copy_(1.0 + 0.1 * torch.randn(mod.weight.shape, generator=g))
                mod.bias.copy_(0.05 * torch.randn(mod.bias.shape, generator=g))
            if isinstance(mod, nn.BatchNorm2d):
                mod.weight.copy_(1.0 + 0.1 * torch.randn(mod.weight.shape, generator=g))
                mod.bias.copy_(0.05 * torch.randn(mod.bias.shape, generator=g))
                mod.running_mean.copy_(0.05 * torch.randn(mod.running_mean.shape, generator=g))
                mod.running_var.copy_(0.75 + 0.5 * torch.rand(mod.running_var.shape, generator=g))
    return m.eval()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--models", default="resnet18,resnet18_cifar,vit_tiny")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--dynamo", action="store_true", help="also export with dynamo=True (external data)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import onnxruntime as ort

    os.makedirs(args.out, exist_ok=True)
    for name in args.models.split(","):
        t0 = time.time()
        size = 224 if name in IMAGENET_SIZE else 32
        x = np.random.default_rng(1234).standard_normal((args.batch, 3, size, size)).astype(np.float32)
        model = build(name)
        path = os.path.join(args.out, name + ".onnx")
        torch.onnx.export(model, (torch.from_numpy(x),), path, dynamo=False, do_constant_folding=False,
                          training=torch.onnx.TrainingMode.EVAL, opset_version=17,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
        paths = [path]
        if args.dynamo:
            dpath = os.path.join(args.out, name + "_dynamo.onnx")
            for stale in (dpath, dpath + ".data"):
                if os.path.exists(stale):
                    os.remove(stale)
            prog = torch.onnx.export(model, (torch.from_numpy(x),), dynamo=True, opset_version=17,
                                     input_names=["input"], output_names=["logits"],
                                     dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},))
            prog.save(dpath, external_data=True)
            paths.append(dpath)
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        for p in paths:
            so = ort.SessionOptions()
            so.intra_op_num_threads = args.threads
            sess = ort.InferenceSession(p, so, providers=["CPUExecutionProvider"])
            out = sess.run(None, {"input": x})[0]
            stem = p[:-len(".onnx")]
            np.savez(stem + ".inputs.npz", input=x)
            np.savez(stem + ".expected.npz", logits=out)
            err = float(np.abs(out - ref).max() / max(1e-12, np.abs(ref).max()))
            params = sum(t.numel() for t in model.parameters())
            print(f"{os.path.basename(p)}: {os.path.getsize(p) / 1e6:.1f} MB, {params / 1e6:.2f} M params, "
                  f"ORT vs torch rel {err:.1e} ({time.time() - t0:.1f}s)")
            if err > 1e-4:
                raise SystemExit(f"{p}: ONNX Runtime disagrees with PyTorch ({err})")


if __name__ == "__main__":
    main()
