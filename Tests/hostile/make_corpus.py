"""Writes the hostile-input corpus that LetheCLITests/HostileInputTests feeds to `lethe`.

Every file here is broken or malicious in one named way (see cases.json, written beside them).
Run with a Python that has numpy and onnx:  python Tests/hostile/make_corpus.py
The outputs are committed; re-running gives the same bytes.
"""
import io
import json
import os
import struct
import sys
import zipfile
import zlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "files")
os.makedirs(OUT, exist_ok=True)
cases = []


def case(name, data, command, expect, why):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
    cases.append({"file": name, "command": command, "expect": expect, "why": why})


CONVERT_ST = ["convert", "{in}", "{out}/converted.safetensors"]
CONVERT_NPZ = ["convert", "{in}", "{out}/converted.npz"]
RUN = ["run", "{in}", "--input", "{inputs}", "--output", "{out}/outputs.npz"]


# ---------------------------------------------------------------- safetensors
def safetensors(header, body=b"", length=None):
    text = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(text) if length is None else length) + text + body


good = {"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}
case("st_truncated_body.safetensors", safetensors(good, b"\0" * 9), CONVERT_NPZ, "",
     "data ends 7 bytes before the last offset")
case("st_header_length_huge.safetensors", safetensors(good, b"\0" * 16, length=(1 << 63) - 1), CONVERT_NPZ, "",
     "declared header length far beyond the file")
case("st_header_not_object.safetensors", safetensors(b"[1, 2, 3]"), CONVERT_NPZ, "",
     "header is a JSON array")
case("st_header_not_json.safetensors", safetensors(b"{\"w\": {\"dtype\": \"F32\",", b""), CONVERT_NPZ, "",
     "header is cut-off JSON")
case("st_overlapping_offsets.safetensors",
     safetensors({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                  "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12),
     CONVERT_NPZ, "", "two tensors share bytes 4..8")
case("st_gap_offsets.safetensors",
     safetensors({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                  "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}, b"\0" * 12),
     CONVERT_NPZ, "", "bytes 4..8 belong to no tensor")
case("st_overflowing_offsets.safetensors",
     safetensors({"a": {"dtype": "F32", "shape": [1], "data_offsets": [18446744073709551612, 18446744073709551616]}}, b"\0" * 4),
     CONVERT_NPZ, "", "offsets beyond 2^64")
case("st_huge_dims.safetensors",
     safetensors({"a": {"dtype": "F32", "shape": [1 << 40, 1 << 40], "data_offsets": [0, 4]}}, b"\0" * 4),
     CONVERT_NPZ, "", "shape product overflows 64 bits")
case("st_negative_dim.safetensors",
     safetensors({"a": {"dtype": "F32", "shape": [-1, 4], "data_offsets": [0, 16]}}, b"\0" * 16),
     CONVERT_NPZ, "", "a negative dimension")
case("st_length_mismatch.safetensors",
     safetensors({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}}, b"\0" * 16),
     CONVERT_NPZ, "", "16 bytes for 3 float32 values")
case("st_duplicate_names.safetensors",
     safetensors(b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
                 b"\0" * 8), CONVERT_NPZ, "", "the name 'a' twice")
case("st_unknown_dtype.safetensors",
     safetensors({"a": {"dtype": "Q7", "shape": [1], "data_offsets": [0, 1]}}, b"\0"), CONVERT_NPZ, "",
     "a dtype no one defines")
case("st_wrong_magic.safetensors", b"PK\x03\x04" + b"\0" * 60, CONVERT_NPZ, "",
     "a zip file named .safetensors")


# ---------------------------------------------------------------- npz / npy
def npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def npy_with_header(header_text, body, version=(1, 0)):
    text = header_text.encode("latin1")
    pad = 64 - (10 + len(text) + 1) % 64
    text = text + b" " * pad + b"\n"
    return b"\x93NUMPY" + bytes(version) + struct.pack("<H", len(text)) + text + body


def npz(members, compression=zipfile.ZIP_STORED):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in members:
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data,
                             compress_type=compression)
    return buffer.getvalue()


weights = npy_bytes(np.arange(6, dtype=np.float32).reshape(2, 3))
case("npz_pickled_member.npz", npz([("w.npy", weights), ("obj.npy", npy_bytes(np.array([{"a": 1}], dtype=object)))]),
     CONVERT_ST, "pickle", "an object array (pickled Python objects)")
case("npz_npy_bad_magic.npz", npz([("w.npy", b"\x93NUMPZ" + weights[6:])]), CONVERT_ST, "",
     "member is not an .npy file")
case("npz_npy_huge_shape.npz",
     npz([("w.npy", npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 1099511627776), }", b"\0" * 16))]),
     CONVERT_ST, "", "shape product overflows 64 bits")
case("npz_npy_negative_shape.npz",
     npz([("w.npy", npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (-3,), }", b"\0" * 16))]),
     CONVERT_ST, "", "a negative dimension")
case("npz_npy_short_data.npz",
     npz([("w.npy", npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (100,), }", b"\0" * 16))]),
     CONVERT_ST, "", "400 bytes declared, 16 present")
case("npz_npy_header_not_dict.npz",
     npz([("w.npy", npy_with_header("__import__('os').system('true')", b""))]),
     CONVERT_ST, "", "header is code, not a dict literal")
case("npz_npy_header_huge.npz",
     npz([("w.npy", b"\x93NUMPY\x02\x00" + struct.pack("<I", 0xFFFFFFF0) + b"{")]),
     CONVERT_ST, "", "declared header length of 4 GB")
case("npz_duplicate_members.npz", npz([("w.npy", weights), ("w.npy", weights)]), CONVERT_ST, "",
     "the member w.npy twice")

# Zip bomb: 256 MiB of zeros deflated to about 256 KB, an honest header (ratio ~1000:1 and above the cap).
bomb = npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (67108864,), }", b"")
bomb_body = bomb + b"\0" * (1 << 28)
case("npz_zip_bomb.npz", npz([("w.npy", bomb_body)], zipfile.ZIP_DEFLATED), CONVERT_ST, "",
     "256 MiB of zeros deflated ~1000:1")
del bomb_body

# A lying local header: the directory says 64 uncompressed bytes, the stream inflates to 4 MiB.
honest = npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (12,), }", b"\0" * 48)
liar = bytearray(npz([("w.npy", honest + b"\0" * (1 << 22))], zipfile.ZIP_DEFLATED))
central = liar.rfind(b"PK\x01\x02")
for offset in (22, central + 24):  # uncompressed size in the local header and the central directory
    struct.pack_into("<I", liar, offset, len(honest))
case("npz_lying_sizes.npz", bytes(liar), CONVERT_ST, "", "declared 64 bytes, inflates to 4 MiB")

flipped = bytearray(npz([("w.npy", weights)]))
flipped[30 + len("w.npy") + 80] ^= 0x40  # a data byte: the CRC no longer matches
case("npz_bad_crc.npz", bytes(flipped), CONVERT_ST, "", "one flipped data bit, CRC mismatch")
whole = npz([("w.npy", weights), ("v.npy", weights)])
case("npz_truncated_directory.npz", whole[:-30], CONVERT_ST, "", "end of central directory cut off")
many = bytearray(whole)
eocd = many.rfind(b"PK\x05\x06")
struct.pack_into("<HH", many, eocd + 8, 0xFFFF, 0xFFFF)
case("npz_entry_count_lie.npz", bytes(many), CONVERT_ST, "", "directory claims 65535 entries")
case("npz_wrong_magic.npz", b"\x89HDF\r\n\x1a\n" + b"\0" * 100, CONVERT_ST, "", "an HDF5 file named .npz")


# ---------------------------------------------------------------- ONNX files
def model_bytes(graph, opset=17):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="hostile")
    model.ir_version = 8
    return model.SerializeToString()


x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
w = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
plain = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "plain", [x], [y], [w])
plain_bytes = model_bytes(plain)

case("onnx_truncated.onnx", plain_bytes[: len(plain_bytes) * 2 // 3], CONVERT_ST, "", "cut two thirds in")
case("onnx_garbage.onnx", bytes((i * 97 + 13) % 256 for i in range(512)), CONVERT_ST, "", "bytes that are not protobuf")
case("onnx_wrong_magic.onnx", b"\x93NUMPY" + plain_bytes, CONVERT_ST, "", "an .npy header before the model")


def external(location, offset=0, length=64):
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, 4], data_location=TensorProto.EXTERNAL)
    for key, value in (("location", location), ("offset", str(offset)), ("length", str(length))):
        entry = t.external_data.add()
        entry.key, entry.value = key, value
    return model_bytes(helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "ext", [x], [y], [t]))


case("onnx_external_dotdot.onnx", external("../../etc/passwd"), CONVERT_ST, "", "external data outside the folder by ..")
case("onnx_external_absolute.onnx", external("/etc/passwd"), CONVERT_ST, "", "external data at an absolute path")
case("onnx_external_missing.onnx", external("not_there.bin"), CONVERT_ST, "", "external data file does not exist")
case("onnx_external_beyond_end.onnx", external("onnx_external_beyond_end.bin", offset=1 << 40), CONVERT_ST, "",
     "offset a terabyte past the end of the data file")
with open(os.path.join(OUT, "onnx_external_beyond_end.bin"), "wb") as f:
    f.write(b"\0" * 64)

huge = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1 << 40, 1 << 40], raw_data=b"\0" * 64)
case("onnx_huge_dims.onnx", model_bytes(helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g", [x], [y], [huge])),
     CONVERT_ST, "", "dims whose product overflows 64 bits")
negative = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[-4, 4], raw_data=b"\0" * 64)
case("onnx_negative_dims.onnx", model_bytes(helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g", [x], [y], [negative])),
     CONVERT_ST, "", "a negative dimension")
short = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, 4], raw_data=b"\0" * 60)
case("onnx_raw_data_short.onnx", model_bytes(helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g", [x], [y], [short])),
     CONVERT_ST, "", "60 raw bytes for 16 float32 values")
case("onnx_duplicate_initializers.onnx",
     model_bytes(helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g", [x], [y], [w, w])),
     CONVERT_ST, "", "the initializer 'w' twice")


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number, payload):
    return varint(number << 3 | 2) + varint(len(payload)) + payload


# Subgraph inside subgraph, 5000 levels: graph → node (1) → attribute (5) → g (6) → graph ...
nested = b""
for _ in range(5000):
    attribute = field(1, b"then_branch") + varint(20 << 3) + varint(5) + field(6, nested)
    nested = field(1, field(4, b"If") + field(5, attribute))
case("onnx_deep_nesting.onnx", varint(1 << 3) + varint(8) + field(7, nested), CONVERT_ST, "",
     "subgraphs nested 5000 deep")

# Graphs that load but must not run.
inputs = os.path.join(OUT, "run_inputs.npz")
np.savez(inputs, x=np.ones((1, 4), np.float32))
cyclic = helper.make_graph([helper.make_node("Relu", ["b"], ["a"]), helper.make_node("Add", ["a", "x"], ["b"]),
                            helper.make_node("Identity", ["b"], ["y"])], "cyclic", [x], [y])
case("graph_cyclic.onnx", model_bytes(cyclic), RUN, "", "a → b → a")
missing = helper.make_graph([helper.make_node("Add", ["x", "nowhere"], ["y"])], "missing", [x], [y])
case("graph_missing_input.onnx", model_bytes(missing), RUN, "", "an input no node or initializer makes")
unknown = helper.make_graph([helper.make_node("FluxCapacitor", ["x"], ["y"])], "unknown", [x], [y])
case("graph_unknown_op.onnx", model_bytes(unknown), RUN, "", "an operator no one defines")
shape = numpy_helper.from_array(np.array([1 << 20, 1 << 20, 1 << 10], np.int64), "shape")
enormous = helper.make_graph([helper.make_node("ConstantOfShape", ["shape"], ["big"]),
                              helper.make_node("ReduceSum", ["big"], ["s"], keepdims=0),
                              helper.make_node("Add", ["x", "s"], ["y"])], "enormous", [x], [y], [shape])
case("graph_huge_intermediate.onnx", model_bytes(enormous), RUN, "", "a 2^50-element intermediate (4 PiB)")
reshape_shape = numpy_helper.from_array(np.array([3, 5], np.int64), "to")
bad_reshape = helper.make_graph([helper.make_node("Reshape", ["x", "to"], ["y"])], "reshape", [x], [y], [reshape_shape])
case("graph_bad_reshape.onnx", model_bytes(bad_reshape), RUN, "", "4 elements reshaped to 3 × 5")
w35 = numpy_helper.from_array(np.ones((3, 5), np.float32), "w")
mismatch = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "mismatch", [x], [y], [w35])
case("graph_matmul_mismatch.onnx", model_bytes(mismatch), RUN, "", "1×4 times 3×5")

with open(os.path.join(HERE, "cases.json"), "w") as f:
    json.dump(cases, f, indent=1)
    f.write("\n")
print(f"wrote {len(cases)} cases to {OUT}")
