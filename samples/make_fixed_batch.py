"""Re-exports the sample models the way most users export theirs: an example batch of one and no
dynamic axes, so the files fix the batch at 1 (`torch.onnx.export(model, torch.zeros(1, 1, 28, 28),
path)`), with both exporters and their defaults (the TorchScript exporter folds constants; the
dynamo exporter keeps weights inline). Same weights as the dynamic-batch samples (read from their
.safetensors), so `lethe eval` must give the same predictions on either file.

  fashion_cnn_b1.onnx           TorchScript exporter (Flatten becomes Reshape to a constant [1, -1])
  fashion_cnn_dynamo_b1.onnx    dynamo exporter
  fashion_vit_b1.onnx           TorchScript exporter (attention reshapes to constants [1, 50, 4, 16])
  fashion_vit_dynamo_b1.onnx    dynamo exporter

Run with the Python environment that made the samples (torch, onnx, safetensors):
    python samples/make_fixed_batch.py
"""
import os
import sys

import torch
from safetensors.torch import load_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_sample  # noqa: E402
import make_vit_sample  # noqa: E402


def load(model, name):
    model.load_state_dict(load_file(os.path.join(HERE, name)))
    return model.eval()


def main():
    example = torch.zeros(1, 1, 28, 28)
    cnn = load(make_sample.FashionCNN(), "fashion_cnn.safetensors")
    torch.onnx.export(cnn, (example,), os.path.join(HERE, "fashion_cnn_b1.onnx"), dynamo=False)
    path = os.path.join(HERE, "fashion_cnn_dynamo_b1.onnx")
    torch.onnx.export(cnn, (example,), dynamo=True).save(path)
    vit = load(make_vit_sample.FashionViT(), "fashion_vit.safetensors")
    torch.onnx.export(vit, (example,), os.path.join(HERE, "fashion_vit_b1.onnx"), dynamo=False)
    torch.onnx.export(vit, (example,), dynamo=True).save(os.path.join(HERE, "fashion_vit_dynamo_b1.onnx"))


if __name__ == "__main__":
    main()
