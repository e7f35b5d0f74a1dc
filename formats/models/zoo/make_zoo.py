#!/usr/bin/env python3
"""Small members of torchvision's classifier zoo, exported with both PyTorch exporters, for the
interpreter's zoo test (Tests/LetheRuntimeTests/ZooTests.swift).

The architectures are torchvision's own classes, built with reduced widths/depths so each file stays
well under 1 MB; weights are torchvision's random initialisation with a fixed seed, BatchNorm/LayerNorm
affine parameters and BatchNorm running statistics randomised too (so normalisation is really exercised).
Chosen for operator coverage:

  swin        SwinTransformer (torchvision.models.swin_transformer, the swin_t code path): patch 4,
              embed 16, depths [2, 2, 1], heads [1, 2, 4], window 4, 40x40 input. Stages see 10x10, 5x5
              and 3x3 tokens, so windows need padding (Pad), the first two stages shift their windows
              (torch.roll -> Slice + Concat; the attention mask is built with ScatterND) and the last
              one does not (window >= resolution).
  mobilenet   mobilenet_v3_small(width_mult=0.25): depthwise convs, Hardswish, Hardsigmoid
              squeeze-excitation (adaptive average pool, Mul), 64x64 input. Conv/Linear weights are
              Kaiming-normal (torchvision's own init leaves the logits nearly input-independent here).
  shufflenet  ShuffleNetV2 with stages_repeats [1, 2, 1] and channels [8, 16, 32, 64, 128]: max pool,
              channel shuffle (Reshape/Transpose), chunk (Split/Slice), Concat, mean over H and W, 64x64;
              Kaiming-normal Conv/Linear weights as for mobilenet.
  convnext    ConvNeXt with two stages (16 and 32 channels, 1 block each): 7x7 depthwise convs,
              channels-last LayerNorm (Permute), LayerNorm2d downsampling, GELU, layer scale, 32x32.
  s3d         torchvision.models.video.S3D with its features replaced by a narrow stack of the same
              blocks (TemporalSeparableConv, SepInceptionBlock3D, MaxPool3d (1,3,3)/(3,3,3)) and a
              (2,4,4) AvgPool3d: 3-D Conv (factorised (1,k,k)+(k,1,1)), BatchNorm3d, 3-D pools; clips
              of 8x64x64. Kaiming-normal Conv weights as for mobilenet.
  swin3d      torchvision.models.video.SwinTransformer3d: patch (2,4,4), embed 16, depths [2, 1],
              heads [1, 2], window (2,4,4), clips of 8x40x40: Conv3d patch embedding, 3-D shifted windows
              (ScatterND mask) with padding (4x10x10 tokens), 3-D roll.

Exports, for each model m:
  m_ts.onnx      torch.onnx.export(dynamo=False, opset_version=17, training=EVAL), constant folding on
                 (the exporter's default, as users run it)
  m_dynamo.onnx  torch.onnx.export(dynamo=True, opset_version=18), weights inline; the per-node
                 metadata_props (PyTorch stack traces and module paths, 60-75 % of the bytes) are
                 dropped, which changes nothing the graph computes
Input `input` float32 [batch, 3, S, S] (clips [batch, 3, T, H, W]) with a dynamic batch; output `logits` [batch, 10].
No expected outputs are stored: the test runs ONNX Runtime itself. The script checks that ONNX Runtime
agrees with PyTorch (< 1e-4 relative) before writing anything, and prints each file's operator histogram.

Usage: /work/pyenv/bin/python formats/models/zoo/make_zoo.py [--only swin,mobilenet] [--out DIR]
"""
import argparse
import collections
import os
import warnings

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = ["swin", "mobilenet", "shufflenet", "convnext", "s3d", "swin3d"]
# Input shape after [batch, 3]: images are square, clips are (frames, height, width).
INPUT_SHAPE = {"swin": (40, 40), "mobilenet": (64, 64), "shufflenet": (64, 64), "convnext": (32, 32),
               "s3d": (8, 64, 64), "swin3d": (8, 40, 40)}


def build(name, seed=0):
    """Model `name` with the fixture's seeded weights (the same values every call)."""
    from functools import partial

    from torchvision.models import mobilenet_v3_small
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt
    from torchvision.models.shufflenetv2 import ShuffleNetV2
    from torchvision.models.swin_transformer import SwinTransformer
    from torchvision.models.video import S3D
    from torchvision.models.video.s3d import SepInceptionBlock3D, TemporalSeparableConv
    from torchvision.models.video.swin_transformer import SwinTransformer3d

    torch.manual_seed(seed)
    if name == "swin":
        m = SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[2, 2, 1], num_heads=[1, 2, 4],
                            window_size=[4, 4], num_classes=10)
    elif name == "mobilenet":
        m = mobilenet_v3_small(width_mult=0.25, num_classes=10)
    elif name == "shufflenet":
        m = ShuffleNetV2(stages_repeats=[1, 2, 1], stages_out_channels=[8, 16, 32, 64, 128], num_classes=10)
    elif name == "convnext":
        m = ConvNeXt([CNBlockConfig(16, 32, 1), CNBlockConfig(32, None, 1)], num_classes=10,
                     norm_layer=None, layer_scale=0.5)
    elif name == "s3d":
        m = S3D(num_classes=10)
        norm = partial(nn.BatchNorm3d, eps=0.001, momentum=0.001)
        m.features = nn.Sequential(
            TemporalSeparableConv(3, 8, 7, 2, 3, norm),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
            TemporalSeparableConv(8, 8, 1, 1, 0, norm),
            TemporalSeparableConv(8, 16, 3, 1, 1, norm),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
            SepInceptionBlock3D(16, 4, 4, 8, 2, 4, 4, norm),
            nn.MaxPool3d(kernel_size=(3, 3, 3), stride=(2, 2, 2), padding=(1, 1, 1)),
            SepInceptionBlock3D(20, 8, 4, 8, 2, 4, 4, norm),
        )
        m.avgpool = nn.AvgPool3d(kernel_size=(2, 4, 4), stride=1)
        m.classifier = nn.Sequential(nn.Dropout(p=0.2), nn.Conv3d(24, 10, kernel_size=1, stride=1, bias=True))
    elif name == "swin3d":
        m = SwinTransformer3d(patch_size=[2, 4, 4], embed_dim=16, depths=[2, 1], num_heads=[1, 2],
                              window_size=[2, 4, 4], num_classes=10)
    else:
        raise ValueError(name)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, (nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm)) and mod.weight is not None:
                mod.weight.copy_(1.0 + 0.2 * torch.randn(mod.weight.shape, generator=g))
                mod.bias.copy_(0.1 * torch.randn(mod.bias.shape, generator=g))
            if isinstance(mod, (nn.BatchNorm2d, nn.BatchNorm3d)):
                mod.running_mean.copy_(0.1 * torch.randn(mod.running_mean.shape, generator=g))
                mod.running_var.copy_(0.5 + torch.rand(mod.running_var.shape, generator=g))
        if name in ("mobilenet", "shufflenet", "s3d"):
            # torchvision's init (small-std classifiers, zero biases) at these widths gives logits that
            # barely depend on the input (the two batch rows agree to 5e-5 and 2e-3), so agreement
            # would prove little.
            for mod in m.modules():
                if isinstance(mod, (nn.Conv2d, nn.Conv3d, nn.Linear)):
                    nn.init.kaiming_normal_(mod.weight)
                    if mod.bias is not None:
                        mod.bias.copy_(0.1 * torch.randn(mod.bias.shape, generator=g))
        # Swin's relative position bias table starts near zero (trunc_normal 0.02); make it matter.
        for pname, p in m.named_parameters():
            if "relative_position_bias_table" in pname:
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
    return m.eval()


def example_input(name, batch=2, seed=1234):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, 3) + INPUT_SHAPE[name]).astype(np.float32)


def export_ts(model, x, path):
    torch.onnx.export(model, (torch.from_numpy(x),), path, dynamo=False, opset_version=17,
                      training=torch.onnx.TrainingMode.EVAL, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})


def export_dynamo(model, x, path):
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.onnx.export(model, (torch.from_numpy(x),), dynamo=True, opset_version=18,
                                input_names=["input"], output_names=["logits"], dynamic_shapes=({0: batch},))
    if os.path.exists(path):
        os.remove(path)
    program.save(path, external_data=False)


def strip_node_metadata(path):
    import onnx
    graph = onnx.load(path)
    for node in graph.graph.node:
        del node.metadata_props[:]
    onnx.save(graph, path)


def check_with_onnxruntime(path, model, x):
    import onnxruntime as ort
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    # The zoo test requires the two batch rows' logits to differ clearly (non-degenerate random model).
    spread = np.abs(expected[0] - expected[1]).max() / np.abs(expected[1]).max()
    assert spread > 1e-2, f"{path}: logits barely depend on the input (spread {spread})"
    print(f"{os.path.basename(path)}: logits spread over the batch {spread:.3g}")
    for batch in (x, x[:1]):
        got = session.run(None, {"input": batch})[0]
        reference = expected[: len(batch)]
        error = np.abs(got - reference).max() / np.abs(reference).max()
        assert error < 1e-4, f"{path}: ONNX Runtime differs from PyTorch by {error}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(MODELS))
    parser.add_argument("--out", default=HERE)
    args = parser.parse_args()
    import onnx
    warnings.filterwarnings("ignore")
    os.makedirs(args.out, exist_ok=True)
    for name in args.only.split(","):
        model = build(name)
        x = example_input(name)
        for flavour, export in (("ts", export_ts), ("dynamo", export_dynamo)):
            path = os.path.join(args.out, f"{name}_{flavour}.onnx")
            export(model, x, path)
            if flavour == "dynamo":
                strip_node_metadata(path)
            check_with_onnxruntime(path, model, x)
            graph = onnx.load(path)
            ops = collections.Counter(n.op_type for n in graph.graph.node)
            opset = {o.domain or "ai.onnx": o.version for o in graph.opset_import}
            print(f"{os.path.basename(path)}: {os.path.getsize(path)} bytes, opset {opset}, "
                  + ", ".join(f"{k}x{v}" for k, v in sorted(ops.items())))


if __name__ == "__main__":
    main()
