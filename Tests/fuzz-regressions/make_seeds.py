"""Writes the hand-made hostile inputs of Tests/fuzz-regressions (run from any folder):

    /work/pyenv/bin/python Tests/fuzz-regressions/make_seeds.py

Each file is named NAME.reject (must be refused with an error) or NAME.accept (must be read; for
`graph`, run). Crash inputs found by scripts/fuzz.sh are added beside these by hand, not by this
script, and are never rewritten by it. Needs numpy and onnx.
"""
import io
import json
import os
import struct
import zipfile
import zlib

import numpy as np
import onnx
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))


def put(target, name, data):
    folder = os.path.join(HERE, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


# ---- protobuf wire helpers

def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number, payload):
    """A length-delimited field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def model_bytes(model):
    return model.SerializeToString(deterministic=True)


def small_model(nodes, inputs, outputs, initializers=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def raw_tensor(name, dims, raw):
    """A float TensorProto built field by field (helper.make_tensor checks sizes; these must not match)."""
    tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=dims)
    tensor.raw_data = raw
    return tensor


def onnx_seeds():
    # Subgraph attributes nested 200 deep: ModelProto.graph → node → attribute.g → node → …
    graph = b""
    for _ in range(200):
        attribute = field(1, b"body") + field(6, graph) + varint(20 << 3) + varint(5)  # type = GRAPH
        node = field(4, b"If") + field(5, attribute)
        graph = field(1, node)
    put("onnx", "nested-subgraphs-200-deep.reject", field(7, graph))

    # A length prefix far beyond the end of the file.
    put("onnx", "length-prefix-beyond-end.reject", varint(7 << 3 | 2) + varint(1 << 62) + b"\x00" * 8)

    # An initializer whose dimensions multiply past Int64.
    huge = raw_tensor("w", [1 << 40, 1 << 40], b"\x00" * 4)
    put("onnx", "initializer-dims-overflow.reject", model_bytes(small_model(
        [], [], [helper.make_tensor_value_info("w", TensorProto.FLOAT, None)], [huge])))

    # raw_data shorter than the shape says.
    short = raw_tensor("w", [1024, 1024], b"\x00" * 16)
    put("onnx", "raw-data-shorter-than-shape.reject", model_bytes(small_model(
        [], [], [helper.make_tensor_value_info("w", TensorProto.FLOAT, None)], [short])))

    # External data pointing out of the (absent) model folder.
    outside = helper.make_tensor("w", TensorProto.FLOAT, [4], vals=[0, 0, 0, 0])
    outside.ClearField("float_data")
    outside.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "/etc/passwd"), ("offset", "0"), ("length", "16")):
        entry = outside.external_data.add()
        entry.key, entry.value = key, value
    put("onnx", "external-data-absolute-path.reject", model_bytes(small_model(
        [], [], [helper.make_tensor_value_info("w", TensorProto.FLOAT, None)], [outside])))

    put("onnx", "empty-file.reject", b"")
    add = helper.make_node("Add", ["x", "y"], ["z"])
    vi = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, ["n", 3])
    put("onnx", "small-add.accept", model_bytes(small_model([add], [vi("x"), vi("y")], [vi("z")])))


def graph_seeds():
    vi = lambda name, dims, t=TensorProto.FLOAT: helper.make_tensor_value_info(name, t, dims)
    add = helper.make_node("Add", ["x", "y"], ["z"])
    put("graph", "add-with-free-batch.accept", model_bytes(small_model(
        [add], [vi("x", ["n", 3]), vi("y", ["n", 3])], [vi("z", ["n", 3])])))

    # Gather with an index far outside the axis.
    indices = helper.make_tensor("i", TensorProto.INT64, [1], [1 << 40])
    gather = helper.make_node("Gather", ["x", "i"], ["z"], axis=0)
    put("graph", "gather-index-out-of-range.reject", model_bytes(small_model(
        [gather], [vi("x", [4, 3])], [vi("z", None)], [indices])))

    # ConstantOfShape asking for 2^62 elements.
    shape = helper.make_tensor("s", TensorProto.INT64, [2], [1 << 31, 1 << 31])
    fill = helper.make_node("ConstantOfShape", ["s"], ["z"])
    put("graph", "constant-of-shape-huge.reject", model_bytes(small_model(
        [fill], [], [vi("z", None)], [shape])))

    # Reshape to a shape whose element count differs from the input's.
    target = helper.make_tensor("s", TensorProto.INT64, [2], [5, 7])
    reshape = helper.make_node("Reshape", ["x", "s"], ["z"])
    put("graph", "reshape-wrong-count.reject", model_bytes(small_model(
        [reshape], [vi("x", [4, 3])], [vi("z", None)], [target])))

    # Conv whose weight expects more channels than the input has.
    weight = helper.make_tensor("w", TensorProto.FLOAT, [2, 5, 3, 3], [0.0] * 90)
    conv = helper.make_node("Conv", ["x", "w"], ["z"])
    put("graph", "conv-channel-mismatch.reject", model_bytes(small_model(
        [conv], [vi("x", [1, 3, 8, 8])], [vi("z", None)], [weight])))

    # Dropout whose training_mode is a float8 initializer (it used to trap reading it as an integer).
    mode = TensorProto(name="t", data_type=TensorProto.FLOAT8E5M2, dims=[])
    mode.raw_data = b"\x00"
    dropout = helper.make_node("Dropout", ["x", "r", "t"], ["z"])
    ratio = helper.make_tensor("r", TensorProto.FLOAT, [], [0.5])
    put("graph", "dropout-float8-training-mode-initializer.reject", model_bytes(small_model(
        [dropout], [vi("x", [2, 3])], [vi("z", None)], [ratio, mode])))

    # ConstantOfShape whose fill value is complex.
    value = helper.make_tensor("value", TensorProto.COMPLEX64, [1], [1 + 2j])
    shape = helper.make_tensor("s", TensorProto.INT64, [1], [4])
    fill = helper.make_node("ConstantOfShape", ["s"], ["z"], value=value)
    put("graph", "constant-of-shape-complex-value.reject", model_bytes(small_model(
        [fill], [], [vi("z", None)], [shape])))

    # Operators that take an axis, on a scalar (which has none; they used to index its empty shape).
    scalar = helper.make_tensor("c", TensorProto.FLOAT, [], [2.0])
    index = helper.make_tensor("i", TensorProto.INT64, [], [0])
    for name, node, extra in (
            ("gather", helper.make_node("Gather", ["c", "i"], ["z"]), [index]),
            ("concat", helper.make_node("Concat", ["c", "c"], ["z"], axis=0), []),
            ("argmax", helper.make_node("ArgMax", ["c"], ["z"], axis=0), []),
            ("split", helper.make_node("Split", ["c"], ["z", "w"], axis=0, num_outputs=2), [])):
        outputs = [vi(output, None) for output in node.output]
        put("graph", f"{name}-of-a-scalar.reject", model_bytes(small_model(
            [node], [], outputs, [scalar] + extra, opset=18)))

    # ConvTranspose whose output_shape has fewer values than spatial axes (it used to index past them).
    weight = helper.make_tensor("w", TensorProto.FLOAT, [1, 2, 3, 3], [0.5] * 18)
    transpose = helper.make_node("ConvTranspose", ["x", "w"], ["z"], output_shape=[10], strides=[3, 2])
    put("graph", "convtranspose-short-output-shape.reject", model_bytes(small_model(
        [transpose], [vi("x", [1, 1, 3, 3])], [vi("z", None)], [weight])))

    # A cycle: z depends on itself.
    cycle = [helper.make_node("Add", ["x", "z"], ["y"]), helper.make_node("Relu", ["y"], ["z"])]
    put("graph", "cycle.reject", model_bytes(small_model(cycle, [vi("x", [2])], [vi("z", [2])])))


# ---- safetensors

def safetensors(header, data=b""):
    text = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(text)) + text + data


def safetensors_seeds():
    put("safetensors", "header-length-2-pow-63.reject", struct.pack("<Q", 1 << 63) + b"{}")
    put("safetensors", "shape-overflows.reject", safetensors(
        {"w": {"dtype": "F32", "shape": [1 << 31, 1 << 31, 1 << 31], "data_offsets": [0, 0]}}))
    put("safetensors", "overlapping-offsets.reject", safetensors(
        {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
         "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\x00" * 12))
    put("safetensors", "offsets-past-end.reject", safetensors(
        {"a": {"dtype": "F32", "shape": [1 << 20], "data_offsets": [0, 4 << 20]}}, b"\x00" * 16))
    put("safetensors", "deeply-nested-json.reject", struct.pack("<Q", 20000) + b"[" * 10000 + b"]" * 10000)
    put("safetensors", "small.accept", safetensors(
        {"__metadata__": {"k": "v"}, "w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}},
        struct.pack("<2f", 1.5, -2.0)))


# ---- npy / npz

def npy(header_text, data=b"", version=(1, 0)):
    header = header_text.encode("latin1")
    length_bytes = 2 if version[0] == 1 else 4
    total = 6 + 2 + length_bytes + len(header) + 1
    header += b" " * ((64 - total % 64) % 64) + b"\n"
    packed = struct.pack("<H" if length_bytes == 2 else "<I", len(header))
    return b"\x93NUMPY" + bytes(version) + packed + header + data


def npy_seeds():
    put("npy", "huge-shape.reject", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }"))
    put("npy", "shape-overflows.reject", npy("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }"))
    put("npy", "header-length-beyond-end.reject", b"\x93NUMPY\x02\x00" + struct.pack("<I", 0xFFFFFFF0) + b"{")
    put("npy", "object-array.reject", npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", b"\x00" * 8))
    put("npy", "nested-tuples.reject", npy("{'descr': '<f4', 'fortran_order': False, 'shape': " + "(" * 2000 + ")" * 2000 + ", }"))
    put("npy", "negative-dimension.reject", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 4), }"))
    buffer = io.BytesIO()
    np.save(buffer, np.arange(6, dtype=">i2").reshape(2, 3))
    put("npy", "big-endian-i2.accept", buffer.getvalue())


def zip_member(name, data, method, declared_size=None, crc=None):
    """One local header + data and its central-directory record (no ZIP64)."""
    compressed = data if method == 0 else zlib.compress(data)[2:-4] if data else b"\x03\x00"
    size = len(data) if declared_size is None else declared_size
    crc = zlib.crc32(data) if crc is None else crc
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0, crc, len(compressed), size,
                        len(name), 0) + name
    central = lambda offset: struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0, crc,
                                         len(compressed), size, len(name), 0, 0, 0, 0, 0, offset) + name
    return local + compressed, central


def zip_archive(members, entries=None):
    body, directory = b"", b""
    for local, central in members:
        directory += central(len(body))
        body += local
    count = len(members) if entries is None else entries
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(directory), len(body), 0)
    return body + directory + end


def npz_seeds():
    array = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", b"\x00" * 16)
    # A deflated member declaring 4 GB from a few bytes (zip-bomb ratio).
    put("npz", "zip-bomb-declared-size.reject",
        zip_archive([zip_member(b"x.npy", array, 8, declared_size=0xFFFFFFF0)]))
    # An npy header inside a deflated member that declares an enormous array.
    bomb = npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776,), }")
    put("npz", "deflated-member-huge-shape.reject", zip_archive([zip_member(b"x.npy", bomb, 8)]))
    put("npz", "entry-count-65535.reject", zip_archive([zip_member(b"x.npy", array, 0)], entries=65535))
    put("npz", "crc-mismatch.reject", zip_archive([zip_member(b"x.npy", array, 0, crc=0xDEADBEEF)]))
    put("npz", "duplicate-names.reject",
        zip_archive([zip_member(b"x.npy", array, 0), zip_member(b"x.npy", array, 0)]))
    # An end record of zero entries followed by junk: an empty archive, as for Python's zipfile.
    put("npz", "empty-archive-trailing-junk.accept", b"PK\x05\x06" + b"\x00" * 18 + b"junk")
    put("npz", "not-a-zip.reject", b"\x93NUMPY\x01\x00" + b"\x00" * 40)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, x=np.arange(12, dtype=np.float32).reshape(3, 4), y=np.array([1, 2, 3]))
    put("npz", "savez-compressed.accept", buffer.getvalue())


def png(width, height, depth, colour, rows, extra=b""):
    """A PNG from already-filtered rows (each starting with its filter byte)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + extra + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def image_seeds():
    pages = os.path.join(HERE, "..", "reference", "images", "pages")
    jpeg = open(os.path.join(pages, "coats", "h_progressive.jpg"), "rb").read()
    gray_jpeg = open(os.path.join(pages, "coats", "g_gray.jpg"), "rb").read()
    put("image", "progressive.accept", jpeg)
    put("image", "gray.accept", gray_jpeg)
    put("image", "gray-2x2.accept", png(2, 2, 8, 0, b"\x00\x00\xff\x00\x80\x40"))
    put("image", "rgb16-1x1.accept", png(1, 1, 16, 2, b"\x00" + struct.pack(">HHH", 65535, 257, 0)))
    put("image", "gray1bit-8x1.accept", png(8, 1, 1, 0, b"\x00\xa5"))
    palette = struct.pack(">I", 6) + b"PLTE" + b"\x00\x00\x00\xff\xff\xff"
    palette += struct.pack(">I", zlib.crc32(b"PLTE\x00\x00\x00\xff\xff\xff") & 0xFFFFFFFF)
    put("image", "palette-2x1.accept", png(2, 1, 8, 3, b"\x00\x00\x01", extra=palette))
    put("image", "palette-missing.reject", png(2, 1, 8, 3, b"\x00\x00\x01"))
    put("image", "rows-missing.reject", png(4, 4, 8, 2, b"\x00" * 13))
    put("image", "huge-png-header.reject", png(100000, 100000, 8, 6, b"\x00" * 64))
    put("image", "bad-crc.reject", png(2, 2, 8, 0, b"\x00\x00\xff\x00\x80\x40")[:-5] + b"\x00\x00\x00\x00\x00")
    sof = jpeg.index(b"\xff\xc2")
    put("image", "huge-jpeg-header.reject", jpeg[:sof + 5] + struct.pack(">HH", 60000, 60000) + jpeg[sof + 9:])
    put("image", "truncated-jpeg.reject", jpeg[: len(jpeg) // 2])
    put("image", "jpeg-signature-only.reject", b"\xff\xd8\xff")
    put("image", "text.reject", b"label,file\n")


if __name__ == "__main__":
    image_seeds()
    onnx_seeds()
    graph_seeds()
    safetensors_seeds()
    npy_seeds()
    npz_seeds()
