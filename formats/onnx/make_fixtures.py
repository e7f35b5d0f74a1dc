#!/usr/bin/env python3
"""Writes the ONNX conformance fixtures Lethe's tests read.

Usage: make_fixtures.py [--no-torch] [OUTPUT_FOLDER]   (default: formats/onnx/fixtures beside this script)

Every model is built with the reference `onnx` package (and two with PyTorch's exporters) and
passes onnx.checker. Beside each model, `<name>.expected.json` lists every graph tensor as the
reference library decodes it (onnx.numpy_helper): ONNX data type, dims and the little-endian
bytes as hex, so tests can check values without Python.
"""
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
OUT = os.path.abspath(ARGS[0]) if ARGS else os.path.join(HERE, "fixtures")
RNG = np.random.default_rng(1234)

# (name, ONNX type, values) for every type Lethe represents. Values stay tiny.
NUMERIC = [
    ("f32", TensorProto.FLOAT, np.array([[1.5, -2.25, 3.0], [0.0, -0.0, 1e-30]], np.float32)),
    ("f64", TensorProto.DOUBLE, np.array([1.0 / 3.0, -2.5e100], np.float64)),
    ("f16", TensorProto.FLOAT16, np.array([1.0, -0.5, 65504.0, 6e-8], np.float16)),
    ("bf16", TensorProto.BFLOAT16, np.array([1.0, -3.0, 0.15625], np.float32)),
    ("i8", TensorProto.INT8, np.array([-128, -1, 0, 127], np.int8)),
    ("i16", TensorProto.INT16, np.array([-32768, 5, 32767], np.int16)),
    ("i32", TensorProto.INT32, np.array([-2147483648, 7, 2147483647], np.int32)),
    ("i64", TensorProto.INT64, np.array([-(2 ** 63), -1, 2 ** 63 - 1], np.int64)),
    ("u8", TensorProto.UINT8, np.array([0, 200, 255], np.uint8)),
    ("u16", TensorProto.UINT16, np.array([0, 40000, 65535], np.uint16)),
    ("u32", TensorProto.UINT32, np.array([0, 3000000000, 4294967295], np.uint32)),
    ("u64", TensorProto.UINT64, np.array([0, 2 ** 64 - 1], np.uint64)),
    ("bool", TensorProto.BOOL, np.array([True, False, True], np.bool_)),
    ("c64", TensorProto.COMPLEX64, np.array([1 + 2j, -3.5 - 0.25j], np.complex64)),
    ("c128", TensorProto.COMPLEX128, np.array([1e-300 + 2j], np.complex128)),
    ("f8e4m3fn", TensorProto.FLOAT8E4M3FN, np.array([1.0, -2.0, 0.5], np.float32)),
    ("f8e4m3fnuz", TensorProto.FLOAT8E4M3FNUZ, np.array([1.0, -0.25], np.float32)),
    ("f8e5m2", TensorProto.FLOAT8E5M2, np.array([4.0, -8.0], np.float32)),
    ("f8e5m2fnuz", TensorProto.FLOAT8E5M2FNUZ, np.array([0.5, 2.0], np.float32)),
]


def make_tensor(name, onnx_type, values, raw):
    """A tensor of `values`, in raw_data or in the typed field ONNX uses for the type."""
    if raw:
        if onnx_type in (TensorProto.BFLOAT16,) or onnx_type >= TensorProto.FLOAT8E4M3FN:
            # make_tensor converts from float32 and packs the result as raw bytes.
            typed = helper.make_tensor(name, onnx_type, values.shape, values.flatten().tolist())
            return numpy_helper.from_array(numpy_helper.to_array(typed), name)
        return numpy_helper.from_array(values, name)
    flat = values.flatten()
    if onnx_type in (TensorProto.COMPLEX64, TensorProto.COMPLEX128):
        flat = flat.tolist()
    else:
        flat = flat.tolist()
    return helper.make_tensor(name, onnx_type, values.shape, flat, raw=False)


def tensor_entry(tensor):
    array = numpy_helper.to_array(tensor)
    return {"name": tensor.name, "type": tensor.data_type, "dims": list(tensor.dims),
            "hex": np.ascontiguousarray(array).tobytes().hex()}


def graph_tensors(graph):
    """Every tensor Lethe maps from a graph: initializers, then node attribute tensors."""
    out = [tensor_entry(t) for t in graph.initializer if t.data_type not in (
        TensorProto.STRING, TensorProto.INT4, TensorProto.UINT4)]
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.TENSOR:
                entry = tensor_entry(attribute.t)
                entry["node_output"] = node.output[0]
                out.append(entry)
            elif attribute.type == onnx.AttributeProto.GRAPH:
                out += graph_tensors(attribute.g)
    return out


def save(model, name, check=True, **save_args):
    if check:
        onnx.checker.check_model(model)
    path = os.path.join(OUT, name + ".onnx")
    onnx.save_model(model, path, **save_args)
    loaded = onnx.load(path)
    expected = {"tensors": graph_tensors(loaded.graph)}
    with open(os.path.join(OUT, name + ".expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    return path


def identity_graph(initializers, name, extra_nodes=(), extra_outputs=()):
    """Each initializer passed through an Identity node to a graph output, so the model checks."""
    nodes, outputs = list(extra_nodes), list(extra_outputs)
    for t in initializers:
        nodes.append(helper.make_node("Identity", [t.name], [t.name + "_out"], name="id_" + t.name))
        outputs.append(helper.make_tensor_value_info(t.name + "_out", t.data_type, list(t.dims)))
    return helper.make_graph(nodes, name, [], outputs, initializer=initializers)


def dtype_models():
    for raw in (True, False):
        tensors = [make_tensor(n + ("_raw" if raw else "_typed"), t, v, raw) for n, t, v in NUMERIC]
        tensors.append(make_tensor("scalar_f32", TensorProto.FLOAT, np.array(2.5, np.float32), raw))
        tensors.append(make_tensor("scalar_i64", TensorProto.INT64, np.array(-7, np.int64), raw))
        tensors.append(make_tensor("empty_f32", TensorProto.FLOAT, np.zeros((0, 3), np.float32), raw))
        # Kinds Lethe carries without representing.
        tensors.append(helper.make_tensor("strings", TensorProto.STRING, [2], [b"lethe", b"\xff\x00"]))
        tensors.append(helper.make_tensor("int4", TensorProto.INT4, [3], [1, -2, 7]))
        graph = identity_graph(tensors, "dtypes")
        model = helper.make_model(graph, producer_name="lethe-fixtures", opset_imports=[helper.make_opsetid("", 21)])
        model.ir_version = 10
        save(model, "dtypes_raw" if raw else "dtypes_typed")


def rich_model():
    """Constants, metadata, doc strings, value infos, subgraphs and unknown fields."""
    weight = numpy_helper.from_array(RNG.standard_normal((4, 3)).astype(np.float32), "weight")
    weight.doc_string = "the weight"
    bias = numpy_helper.from_array(np.array([0.5, -0.5, 1.0], np.float32), "bias")
    const_tensor = helper.make_node("Constant", [], ["c_tensor"], name="c_tensor_node",
                                    value=numpy_helper.from_array(np.array([[1, 2], [3, 4]], np.int64), "c_val"))
    const_float = helper.make_node("Constant", [], ["c_float"], name="c_float_node", value_float=0.25)
    const_floats = helper.make_node("Constant", [], ["c_floats"], value_floats=[1.0, 2.0])
    const_int = helper.make_node("Constant", [], ["c_int"], value_int=3)
    const_ints = helper.make_node("Constant", [], ["c_ints"], value_ints=[4, 5, 6])
    matmul = helper.make_node("MatMul", ["x", "weight"], ["h"], name="mm", doc_string="a matmul")
    add = helper.make_node("Add", ["h", "bias"], ["y0"], name="add")
    # If with two subgraphs, each with its own constant and initializer.
    then_init = numpy_helper.from_array(np.array([10.0, 20.0, 30.0], np.float32), "then_add")
    then_graph = helper.make_graph(
        [helper.make_node("Add", ["y0", "then_add"], ["then_y"])], "then_branch", [],
        [helper.make_tensor_value_info("then_y", TensorProto.FLOAT, ["batch", 3])], initializer=[then_init])
    else_graph = helper.make_graph(
        [helper.make_node("Constant", [], ["else_c"], value=numpy_helper.from_array(
            np.array([-1.0, -2.0, -3.0], np.float32), "else_val")),
         helper.make_node("Mul", ["y0", "else_c"], ["else_y"])], "else_branch", [],
        [helper.make_tensor_value_info("else_y", TensorProto.FLOAT, ["batch", 3])])
    cond = helper.make_node("Constant", [], ["cond"], value=numpy_helper.from_array(np.array(True), "cond_val"))
    if_node = helper.make_node("If", ["cond"], ["y"], name="branch", then_branch=then_graph, else_branch=else_graph)
    graph = helper.make_graph(
        [const_tensor, const_float, const_floats, const_int, const_ints, matmul, add, cond, if_node], "rich",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3]),
         helper.make_tensor_value_info("c_tensor", TensorProto.INT64, [2, 2]),
         helper.make_tensor_value_info("c_float", TensorProto.FLOAT, []),
         helper.make_tensor_value_info("c_floats", TensorProto.FLOAT, [2]),
         helper.make_tensor_value_info("c_int", TensorProto.INT64, []),
         helper.make_tensor_value_info("c_ints", TensorProto.INT64, [3])],
        initializer=[weight, bias], doc_string="graph doc",
        value_info=[helper.make_tensor_value_info("h", TensorProto.FLOAT, ["batch", 3])])
    model = helper.make_model(graph, producer_name="lethe-fixtures", producer_version="1.0",
                              doc_string="model doc", opset_imports=[helper.make_opsetid("", 17),
                                                                     helper.make_opsetid("ai.onnx.ml", 3)])
    model.ir_version = 8
    helper.set_model_props(model, {"author": "lethe", "license": "MIT", "z-order": "kept"})
    # Unknown fields (numbers no ONNX version uses): on the model, a node, and a weight.
    unknown = bytes([0xC0, 0x3E, 0x2A]) + bytes([0xCA, 0x3E, 0x03]) + b"abc"  # field 1000 varint 42, field 1001 "abc"
    node = model.graph.node[5]
    node.ParseFromString(node.SerializeToString() + unknown)
    w = model.graph.initializer[0]
    w.ParseFromString(w.SerializeToString() + unknown)
    onnx.checker.check_model(model)
    path = os.path.join(OUT, "rich.onnx")
    with open(path, "wb") as f:
        f.write(model.SerializeToString() + unknown)
    loaded = onnx.load(path)
    with open(os.path.join(OUT, "rich.expected.json"), "w") as f:
        json.dump({"tensors": graph_tensors(loaded.graph)}, f, indent=1)


def external_model():
    """Weights in a separate file at explicit offsets, one stays inline."""
    a = RNG.standard_normal((8, 16)).astype(np.float32)
    b = RNG.standard_normal((16,)).astype(np.float32)
    c = np.arange(6, dtype=np.int64)
    small = np.array([1.0, 2.0], np.float16)
    data = bytearray()
    tensors = []
    for name, array in (("a", a), ("b", b), ("c", c)):
        offset = (len(data) + 63) // 64 * 64
        data += b"\0" * (offset - len(data))
        blob = array.tobytes()
        t = numpy_helper.from_array(array, name)
        t.ClearField("raw_data")
        t.data_location = TensorProto.EXTERNAL
        for k, v in (("location", "external.data"), ("offset", str(offset)), ("length", str(len(blob)))):
            entry = t.external_data.add()
            entry.key, entry.value = k, v
        data += blob
        tensors.append(t)
    tensors.append(numpy_helper.from_array(small, "small"))
    with open(os.path.join(OUT, "external.data"), "wb") as f:
        f.write(data)
    graph = identity_graph(tensors, "external")
    model = helper.make_model(graph, producer_name="lethe-fixtures", opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    path = os.path.join(OUT, "external.onnx")
    onnx.save_model(model, path)
    onnx.checker.check_model(path)
    loaded = onnx.load(path)  # resolves the external data
    with open(os.path.join(OUT, "external.expected.json"), "w") as f:
        json.dump({"tensors": graph_tensors(loaded.graph)}, f, indent=1)


def torch_models():
    import torch

    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
            self.bn = torch.nn.BatchNorm2d(4)
            self.fc = torch.nn.Linear(4 * 4 * 4, 3)

        def forward(self, x):
            x = torch.relu(self.bn(self.conv(x)))
            return self.fc(torch.flatten(x, 1))

    net = Net().eval()
    x = torch.randn(2, 1, 4, 4)
    script_path = os.path.join(OUT, "torch_script.onnx")
    torch.onnx.export(net, (x,), script_path, dynamo=False, input_names=["x"], output_names=["y"],
                      do_constant_folding=False)
    dynamo_path = os.path.join(OUT, "torch_dynamo.onnx")
    program = torch.onnx.export(net, (x,), dynamo=True, input_names=["x"], output_names=["y"])
    program.save(dynamo_path, external_data=True)
    for path in (script_path, dynamo_path):
        onnx.checker.check_model(path)
        loaded = onnx.load(path)
        with open(path[:-len(".onnx")] + ".expected.json", "w") as f:
            json.dump({"tensors": graph_tensors(loaded.graph)}, f, indent=1)
    np.save(os.path.join(OUT, "torch_input.npy"), x.numpy())


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    dtype_models()
    rich_model()
    external_model()
    if "--no-torch" not in sys.argv:
        torch_models()
    print("fixtures written to", OUT)
