#!/usr/bin/env python3
"""Regenerates the NumPy .npy/.npz conformance fixtures with NumPy itself.

Usage: make_fixtures.py [OUT_DIR]   (default: the fixtures/ folder beside this script)

Writes small .npy and .npz files plus manifest.json, which lists per file (and per npz member,
in archive order) the dtype name, shape and the hex of the C-order little-endian bytes that a
reader must produce, so that tests without Python can check values exactly.
"""
import io
import json
import os
import sys

import numpy as np

DTYPE_NAMES = {
    "bool": "bool", "int8": "int8", "int16": "int16", "int32": "int32", "int64": "int64",
    "uint8": "uint8", "uint16": "uint16", "uint32": "uint32", "uint64": "uint64",
    "float16": "float16", "float32": "float32", "float64": "float64",
    "complex64": "complex64", "complex128": "complex128",
}


def expected(a):
    a = np.asarray(a)
    le = a.astype(a.dtype.newbyteorder("<"), order="C") if a.dtype.byteorder == ">" else a
    return {"dtype": DTYPE_NAMES[le.dtype.name], "shape": list(a.shape),
            "hex": np.ascontiguousarray(le).tobytes().hex()}


def arrays():
    rng = np.random.default_rng(11)
    base = rng.standard_normal((2, 3))
    return {
        "bool": np.array([[True, False, True], [False, True, True]]),
        "i1": np.array([-128, -1, 0, 127], dtype=np.int8),
        "i2": np.array([-32768, 5, 32767], dtype=np.int16),
        "i4": np.arange(-3, 3, dtype=np.int32).reshape(2, 3),
        "i8": np.array([-(2 ** 63), 0, 2 ** 63 - 1], dtype=np.int64),
        "u1": np.arange(6, dtype=np.uint8) * 50,
        "u2": np.array([0, 65535], dtype=np.uint16),
        "u4": np.array([0, 4000000000], dtype=np.uint32),
        "u8": np.array([0, 2 ** 64 - 1], dtype=np.uint64),
        "f2": base.astype(np.float16),
        "f4": base.astype(np.float32),
        "f8": base,
        "c8": (base + 1j * base[::-1]).astype(np.complex64),
        "c16": base + 2j * base,
        "scalar": np.float32(2.5) * np.ones((), dtype=np.float32),
        "empty": np.zeros((0, 4), dtype=np.float32),
        "big_endian": base.astype(">f4"),
        "fortran": np.asfortranarray(np.arange(24, dtype=np.float64).reshape(2, 3, 4)),
    }


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
    os.makedirs(out, exist_ok=True)
    manifest = {}
    a = arrays()

    np.savez(os.path.join(out, "stored.npz"), **a)
    np.savez_compressed(os.path.join(out, "deflated.npz"), **a)
    for name in ("stored.npz", "deflated.npz"):
        manifest[name] = [dict(name=k, **expected(v)) for k, v in a.items()]

    rng = np.random.default_rng(3)
    data = {"x": rng.standard_normal((5, 1, 4, 4)).astype(np.float32), "y": np.array([0, 1, 2, 1, 0], dtype=np.int64)}
    np.savez(os.path.join(out, "data.npz"), **data)
    manifest["data.npz"] = [dict(name=k, **expected(v)) for k, v in data.items()]

    singles = {
        "v1_f4.npy": (a["f4"], (1, 0)),
        "v2_i8.npy": (a["i8"], (2, 0)),
        "v3_c8.npy": (a["c8"], (3, 0)),
        "big_endian_f8.npy": (a["f8"].astype(">f8"), None),
        "big_endian_c16.npy": (a["c16"].astype(">c16"), None),
        "big_endian_i2.npy": (a["i2"].astype(">i2"), None),
        "fortran_f4.npy": (np.asfortranarray(a["f4"]), None),
        "fortran_big_endian_i4.npy": (np.asfortranarray(np.arange(24, dtype=">i4").reshape(2, 3, 4)), None),
        "scalar_bool.npy": (np.array(True), None),
        "empty_f2.npy": (np.zeros((3, 0), dtype=np.float16), None),
    }
    for name, (array, version) in singles.items():
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, array, version=version)
        with open(os.path.join(out, name), "wb") as f:
            f.write(buffer.getvalue())
        manifest[name] = expected(array)

    # Refused inputs: an object array (pickled) and a structured dtype.
    np.save(os.path.join(out, "pickled.npy"), np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    np.save(os.path.join(out, "structured.npy"), np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")]))

    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
