#!/usr/bin/env python3
"""Train the Lethe sample model on real Fashion-MNIST and write it in every supported format.

Data: Debian's `dataset-fashion-mnist` (/usr/share/datasets/fashion-mnist/*-ubyte.gz), parsed
from the IDX files directly. Everything is seeded; re-running on the same machine with the same
thread count gives the same bytes for the data files and the same model up to BLAS reduction order.

Outputs (in this folder):
  fashion_cnn.onnx                         TorchScript exporter, opset 17, no constant folding, EVAL
  fashion_cnn_dynamo.onnx (+ .onnx.data)   dynamo exporter, weights as external data
  fashion_cnn.safetensors, fashion_cnn.npz weights named as the initializers of fashion_cnn.onnx
  fashion_train.npz                        300 training images per class (x uint8 Nx1x28x28, y int64)
  fashion_test.npz                         100 test images per class
  export_report.json                       initializer names, aliasing, accuracies (for the README)

Usage: /work/pyenv/bin/python samples/make_sample.py [--data DIR] [--epochs 3] [--threads 2]
"""
import argparse
import gzip
import json
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def read_idx(path):
    """Parses an IDX file (optionally gzip-compressed): magic 0x0000 <dtype> <ndim>, big-endian dims."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: not an IDX file")
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if data[2] not in dtypes:
        raise ValueError(f"{path}: unknown IDX dtype 0x{data[2]:02x}")
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=dtypes[data[2]], offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f"{path}: expected {np.prod(dims)} elements, found {arr.size}")
    return arr.reshape(dims)


def load_fashion(folder):
    def part(prefix):
        x = read_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte.gz"))
        y = read_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte.gz"))
        return x[:, None, :, :].copy(), y.astype(np.int64)
    return part("train"), part("t10k")


class FashionCNN(nn.Module):
    """The sample architecture. Module names become ONNX initializer names; keep them stable."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(32)
        self.fc1 = nn.Linear(32 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = torch.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 2)
        x = torch.max_pool2d(torch.relu(self.bn2(self.conv2(x))), 2)
        x = torch.flatten(x, 1)
        return self.fc2(torch.relu(self.fc1(x)))


def first_per_class(y, per_class):
    """Indices of the first `per_class` samples of each class, in class order then file order."""
    idx = [np.flatnonzero(y == c)[:per_class] for c in range(10)]
    return np.concatenate(idx)


def ort_accuracy(path, x_uint8, y, batch=1000):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    correct = 0
    for i in range(0, len(y), batch):
        xb = x_uint8[i:i + batch].astype(np.float32) / 255.0
        logits = sess.run(None, {name: xb})[0]
        correct += int((logits.argmax(1) == y[i:i + batch]).sum())
    return correct / len(y)


def fit(model, xtr, ytr, epochs, seed, lr_at=None, log=sys.stderr):
    """The samples' training loop: pixels scaled to [0,1], Adam at lr 1e-3 (or `lr_at(step, total_steps)`
    set before every step), batches of 128 in an order drawn by a generator seeded with `seed`.
    xtr uint8 [N,1,28,28], ytr int64 [N]. Returns the model in eval mode."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.from_numpy(xtr).float().div_(255.0)
    y = torch.from_numpy(ytr)
    gen = torch.Generator().manual_seed(seed)
    total_steps, step = epochs * ((len(y) + 127) // 128), 0
    t0 = time.time()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(y), generator=gen)
        total = 0.0
        for i in range(0, len(perm), 128):
            if lr_at:
                for group in opt.param_groups:
                    group["lr"] = lr_at(step, total_steps)
            b = perm[i:i + 128]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x[b]), y[b])
            loss.backward()
            opt.step()
            total += loss.item() * len(b)
            step += 1
        if log:
            print(f"epoch {epoch + 1}: loss {total / len(perm):.4f} ({time.time() - t0:.0f}s)", file=log)
    model.eval()
    return model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--out", default=HERE)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.use_deterministic_algorithms(True)

    (xtr, ytr), (xte, yte) = load_fashion(args.data)
    print(f"train {xtr.shape} test {xte.shape}", file=sys.stderr)

    model = fit(FashionCNN(), xtr, ytr, args.epochs, args.seed)
    with torch.no_grad():
        xte_t = torch.from_numpy(xte).float().div_(255.0)
        torch_acc = (model(xte_t).argmax(1).numpy() == yte).mean()
    print(f"torch test accuracy (10000): {torch_acc:.4f}")

    out = args.out
    os.makedirs(out, exist_ok=True)
    example = torch.from_numpy(xte[:2]).float() / 255.0
    onnx_path = os.path.join(out, "fashion_cnn.onnx")
    torch.onnx.export(model, (example,), onnx_path, dynamo=False, do_constant_folding=False,
                      training=torch.onnx.TrainingMode.EVAL, opset_version=17,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})

    dyn_path = os.path.join(out, "fashion_cnn_dynamo.onnx")
    batch = torch.export.Dim("batch", min=1, max=4096)
    prog = torch.onnx.export(model, (example,), dynamo=True, opset_version=17,
                             input_names=["input"], output_names=["logits"],
                             dynamic_shapes=({0: batch},), optimize=True)
    for stale in (dyn_path, dyn_path + ".data"):
        if os.path.exists(stale):
            os.remove(stale)
    prog.save(dyn_path, external_data=True)

    import onnx
    m = onnx.load(onnx_path)
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in m.graph.initializer}
    aliases = {n.output[0]: n.input[0] for n in m.graph.node
               if n.op_type == "Identity" and n.input[0] in inits}
    sd = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    paired = [k for k in sd if k in inits]
    via_identity = [k for k in sd if k not in inits and k in aliases]
    dropped = [k for k in sd if k not in inits and k not in aliases]
    for k in paired:
        if not np.array_equal(sd[k], inits[k]):
            raise SystemExit(f"initializer {k} differs from the state_dict")
    for k in via_identity:
        if not np.array_equal(sd[k], inits[aliases[k]]):
            raise SystemExit(f"Identity alias {k} -> {aliases[k]} differs from the state_dict")
    # Only tensors the graph names as initializers: `--graph fashion_cnn.onnx` pairs every one of them.
    weights = {k: sd[k] for k in inits}
    from safetensors.numpy import save_file
    save_file(weights, os.path.join(out, "fashion_cnn.safetensors"),
              # One key only: safetensors writes metadata in hash order, so two keys would make the bytes vary.
              metadata={"format": "pt"})
    np.savez(os.path.join(out, "fashion_cnn.npz"), **weights)

    tr_idx = first_per_class(ytr, 300)
    te_idx = first_per_class(yte, 100)
    np.savez_compressed(os.path.join(out, "fashion_train.npz"), x=xtr[tr_idx], y=ytr[tr_idx])
    np.savez_compressed(os.path.join(out, "fashion_test.npz"), x=xte[te_idx], y=yte[te_idx])

    dm = onnx.load(dyn_path, load_external_data=False)
    ext = sorted({e.value for i in dm.graph.initializer for e in i.external_data if e.key == "location"})
    report = {
        "torch_test_accuracy_full": float(torch_acc),
        "ort_test_accuracy_full": ort_accuracy(onnx_path, xte, yte),
        "ort_test_accuracy_fashion_test_npz": ort_accuracy(onnx_path, xte[te_idx], yte[te_idx]),
        "ort_dynamo_test_accuracy_full": ort_accuracy(dyn_path, xte, yte),
        "ort_train_accuracy_fashion_train_npz": ort_accuracy(onnx_path, xtr[tr_idx], ytr[tr_idx]),
        "torchscript_initializers": {k: list(v.shape) for k, v in inits.items()},
        "torchscript_identity_aliases": aliases,
        "state_dict_paired_by_name": paired,
        "state_dict_paired_via_identity": via_identity,
        "state_dict_not_in_onnx": dropped,
        "torchscript_ops": sorted({n.op_type for n in m.graph.node}),
        "dynamo_initializers": {i.name: list(i.dims) for i in dm.graph.initializer},
        "dynamo_external_data_files": ext,
        "dynamo_ops": sorted({n.op_type for n in dm.graph.node}),
        "dynamo_inputs": [(i.name, [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim])
                          for i in dm.graph.input],
        "dynamo_outputs": [(i.name, [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim])
                           for i in dm.graph.output],
    }
    with open(os.path.join(out, "export_report.json"), "w") as f:
        json.dump(report, f, indent=1)
        f.write("\n")
    for k in ("ort_test_accuracy_full", "ort_test_accuracy_fashion_test_npz", "ort_dynamo_test_accuracy_full"):
        print(f"{k}: {report[k]:.4f}")
    print(json.dumps({k: report[k] for k in ("torchscript_identity_aliases", "state_dict_not_in_onnx",
                                             "dynamo_external_data_files")}))


if __name__ == "__main__":
    main()
