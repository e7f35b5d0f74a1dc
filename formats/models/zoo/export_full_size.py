#!/usr/bin/env python3
"""Full-size torchvision classifiers (random weights, 10 classes) exported with both exporters into OUT,
for a local run of the zoo test against them:

  /work/pyenv/bin/python formats/models/zoo/export_full_size.py /tmp/zoo-full [--models swin_t,resnet50]
  LETHE_ZOO=/tmp/zoo-full swift test --filter LetheRuntimeTests.ZooTests

The files are large (up to 350 MB each): never commit them. Exports use make_zoo.py's settings
(TorchScript opset 17, dynamo opset 18, dynamic batch). Where torchvision's initialisation gives logits
that barely depend on the input (ViT's zero head, GoogLeNet's 0.01-std convs at 64x64, ...), Conv and
Linear weights are re-drawn Kaiming-normal, since agreement on near-constant logits proves little.
An export the exporter refuses is reported and skipped.
"""
import argparse
import os
import sys
import warnings

import numpy as np
import torch
import torch.nn as nn
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_zoo import export_dynamo, export_ts  # noqa: E402

# Model and input size (the smallest convenient one each architecture accepts); video models
# (torchvision.models.video) take [batch, 3, frames, height, width].
MODELS = {
    "swin_t": 224, "swin_v2_t": 224, "maxvit_t": 224, "vit_b_16": 224, "convnext_tiny": 64,
    "resnet50": 64, "mobilenet_v3_large": 64, "efficientnet_b0": 64, "efficientnet_v2_s": 64,
    "regnet_y_400mf": 64, "densenet121": 64, "googlenet": 64, "inception_v3": 96, "squeezenet1_1": 64,
    "mnasnet0_5": 64, "shufflenet_v2_x1_0": 64, "alexnet": 64,
    "r3d_18": (8, 64, 64), "mc3_18": (8, 64, 64), "r2plus1d_18": (8, 64, 64), "s3d": (16, 224, 224),
    "swin3d_t": (8, 64, 64),
}


def spread(model, x):
    with torch.no_grad():
        y = model(torch.from_numpy(x)).numpy()
    return np.abs(y[0] - y[1]).max() / max(np.abs(y[1]).max(), 1e-30)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    os.makedirs(args.out, exist_ok=True)
    for name in args.models.split(","):
        size = MODELS[name]
        torch.manual_seed(0)
        video = isinstance(size, tuple)
        zoo = torchvision.models.video if video else torchvision.models
        model = getattr(zoo, name)(num_classes=10).eval()
        shape = (2, 3) + (size if video else (size, size))
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        note = ""
        if spread(model, x) < 1e-2:
            with torch.no_grad():
                for module in model.modules():
                    if isinstance(module, (nn.Conv2d, nn.Conv3d, nn.Linear)):
                        nn.init.kaiming_normal_(module.weight)
                        if module.bias is not None:
                            module.bias.normal_(0, 0.1)
            note = " (Kaiming re-init)"
        for flavour, export in (("ts", export_ts), ("dynamo", export_dynamo)):
            path = os.path.join(args.out, f"{name}_{flavour}.onnx")
            try:
                export(model, x, path)
                print(f"{name}_{flavour}: {os.path.getsize(path)} bytes, input {'x'.join(map(str, shape[2:]))}{note}", flush=True)
            except Exception as error:  # the exporter's refusal is a finding, not a failure of this script
                print(f"{name}_{flavour}: export failed: {str(error).splitlines()[0][:200]}", flush=True)
                if os.path.exists(path):
                    os.remove(path)


if __name__ == "__main__":
    main()
