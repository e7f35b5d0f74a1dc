import Foundation
import LetheCore
import LetheIR
import XCTest
@testable import LetheNumPy

/// Real `.npy`/`.npz` files from SciPy's wheel (`formats/npz/fixtures/scipy`) and string arrays
/// written by NumPy: every array reads as NumPy reads it and is written back byte for byte.
final class SciPyCorpusTests: XCTestCase {
    static let readable = [
        "csc_py2.npz", "csc_py3.npz", "fftpack_test.npz", "jf_skew_t_gamlss_pdf_data.npy",
        "estimate_gradients_hang.npy", "rel_breitwigner_pdf_sample_data_ROOT.npy"
    ]

    private func corpus(_ name: String) -> String { TestSupport.fixture("scipy/\(name)") }

    /// NumPy's arrays in `path`, one line each: name (None for a bare `.npy`), `dtype.str` after
    /// converting to little-endian, shape, and the C-order bytes in hex.
    private func numpyListing(_ path: String) throws -> [String] {
        let output = try TestSupport.runPython(
            """
            import numpy as np, sys
            p = sys.argv[1]
            if p.endswith('.npy'):
                items = [(None, np.load(p))]
            else:
                z = np.load(p)
                items = [(k, z[k]) for k in z.files]
            for k, a in items:
                a = a.astype(a.dtype.newbyteorder('<')).copy(order='C')
                print(k, a.dtype.str, list(a.shape), a.tobytes().hex())
            """, arguments: [path])
        return output.split(separator: "\n").map(String.init)
    }

    /// Compares listings line by line, showing only the start of lines that differ.
    private func assertSameListing(
        _ lethe: [String], _ numpy: [String], _ what: String,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertEqual(lethe.count, numpy.count, "\(what): array count", file: file, line: line)
        for (a, b) in zip(lethe, numpy) where a != b {
            XCTFail("\(what): Lethe has \(a.prefix(160)), NumPy \(b.prefix(160))", file: file, line: line)
        }
    }

    /// The same listing from Lethe's arrays.
    private func letheListing(_ arrays: [(name: String?, tensor: Tensor)]) throws -> [String] {
        try arrays.map { name, tensor in
            let (descr, shape) = try NPYHeader.numPyType(
                dtype: tensor.dtype, shape: tensor.shape, name: name ?? "array")
            return "\(name ?? "None") \(descr) \(shape) \(TestSupport.hex(tensor))"
        }
    }

    private func read(_ path: String) throws -> [(name: String?, tensor: Tensor)] {
        if path.hasSuffix(".npy") { return [(nil, try NPYFormat.read(path: path).tensor)] }
        return try NPZFormat.readArrays(path: path).map { ($0.name, $0.tensor) }
    }

    func testEveryArrayReadsAsNumPyReadsIt() throws {
        for name in Self.readable {
            assertSameListing(try letheListing(try read(corpus(name))), try numpyListing(corpus(name)), name)
        }
        // The string members are there, with NumPy's shape and width after the character axis.
        let py3 = try XCTUnwrap(
            try NPZFormat.read(path: corpus("csc_py3.npz")).model.graph.initializer(named: "format"))
        XCTAssertEqual(py3.dtype, .unicode)
        XCTAssertEqual(py3.shape, [3])
        XCTAssertEqual(py3.characterArray, CharacterArray(shape: [], width: 3))
        XCTAssertEqual(py3.withUnsafeBytes { Array($0) }, Array("c\0\0\0s\0\0\0c\0\0\0".utf8))
        let py2 = try XCTUnwrap(
            try NPZFormat.read(path: corpus("csc_py2.npz")).model.graph.initializer(named: "format"))
        XCTAssertEqual(py2.dtype, .bytes)
        XCTAssertEqual(py2.withUnsafeBytes { Array($0) }, Array("csc".utf8))
    }

    func testUnchangedRewritesAreByteIdentical() throws {
        let folder = try TestSupport.temporaryDirectory()
        for name in Self.readable {
            let out = "\(folder)/\(name)"
            if name.hasSuffix(".npy") {
                let file = try NPYFormat.read(path: corpus(name))
                try NPYFormat.write(file.tensor, to: out, original: file)
            } else {
                let file = try NPZFormat.read(path: corpus(name))
                try NPZFormat.write(file.model, to: out, original: file)
            }
            XCTAssertEqual(try TestSupport.bytes(out), try TestSupport.bytes(corpus(name)), name)
        }
    }

    /// Fresh files (stored and deflated archives, `.npy` without an original) hold NumPy's arrays.
    func testFreshWritesLoadInNumPyUnchanged() throws {
        let folder = try TestSupport.temporaryDirectory()
        for name in Self.readable {
            let expected = try numpyListing(corpus(name))
            if name.hasSuffix(".npy") {
                let out = "\(folder)/fresh-\(name)"
                try NPYFormat.write(try NPYFormat.read(path: corpus(name)).tensor, to: out)
                assertSameListing(try numpyListing(out), expected, name)
                continue
            }
            let arrays = try NPZFormat.readArrays(path: corpus(name))
            for compressed in [false, true] {
                let out = "\(folder)/fresh-\(compressed)-\(name)"
                try NPZFormat.writeArrays(arrays, to: out, compressed: compressed)
                assertSameListing(try numpyListing(out), expected, "\(name) compressed: \(compressed)")
                assertSameListing(try letheListing(try read(out)), expected, "\(name) read back")
            }
        }
    }

    func testPickledMembersAreRefusedWithTheirReason() throws {
        XCTAssertThrowsError(try NPZFormat.read(path: corpus("propack_test_data.npz"))) { error in
            XCTAssertTrue(
                "\(error)".contains("A_real.npy: object array (descr 'O') holds pickled Python objects"), "\(error)")
            XCTAssertTrue("\(error)".hasPrefix(self.corpus("propack_test_data.npz") + ": "), "\(error)")
        }
    }

    /// Byte strings and UCS-4 strings of every layout NumPy writes: C and Fortran order, big-endian,
    /// scalars, empty arrays, empty strings. Lethe reads NumPy's values, and encodes C-order
    /// little-endian ones exactly as `np.save` does.
    func testStringArraysMatchNumPy() throws {
        let folder = try TestSupport.temporaryDirectory()
        try TestSupport.runPython(
            """
            import numpy as np, sys, os
            d = sys.argv[1]
            cases = {
                's5': np.array([[b'alpha', b'be', b''], [b'gamma', b'\\x00\\xff', b'delta']], dtype='S5'),
                'u3_fortran': np.asfortranarray(np.array([['a', 'bc'], ['def', ''], ['\\u00e9', '\\U0001f600']], dtype='<U3')),
                'u4_big': np.array([['ab', 'c'], ['', 'dddd']], dtype='>U4'),
                'u7_scalar': np.array('scalar!', dtype='<U7'),
                's1_empty': np.zeros((0, 3), dtype='S1'),
                's2_fortran_3d': np.asfortranarray(np.arange(24).astype('S2').reshape(2, 3, 4)),
            }
            for k, v in cases.items():
                np.save(os.path.join(d, k + '.npy'), v)
                np.save(os.path.join(d, k + '.c.npy'), v.astype(v.dtype.newbyteorder('<')).copy(order='C'))
            """, arguments: [folder])
        for name in ["s5", "u3_fortran", "u4_big", "u7_scalar", "s1_empty", "s2_fortran_3d"] {
            let path = "\(folder)/\(name).npy"
            let tensor = try NPYFormat.read(path: path).tensor
            assertSameListing(try letheListing([(nil, tensor)]), try numpyListing(path), name)
            XCTAssertTrue(tensor.dtype.isCharacter, name)
            XCTAssertFalse(tensor.dtype.isNumeric, name)
            // NumPy's C-order little-endian file of the same array is what Lethe writes.
            XCTAssertEqual(try NPYFormat.encode(tensor), try TestSupport.bytes("\(folder)/\(name).c.npy"), name)
        }
    }

    /// A stored string member changed in place is patched like a number member, and NumPy reads it.
    func testPatchedStringMember() throws {
        let folder = try TestSupport.temporaryDirectory()
        try TestSupport.runPython(
            """
            import numpy as np, sys
            np.savez(sys.argv[1], w=np.arange(4, dtype='<f4'), label=np.array(['cat', 'dog'], dtype='<U3'))
            """, arguments: ["\(folder)/in.npz"])
        var file = try NPZFormat.read(path: "\(folder)/in.npz")
        let index = try XCTUnwrap(file.model.graph.initializerIndex(named: "label"))
        var label = file.model.graph.initializers[index].tensor
        XCTAssertEqual(label.shape, [2, 3])
        label.withUnsafeMutableBytes {
            $0.storeBytes(of: UInt32(UInt8(ascii: "b")).littleEndian, toByteOffset: 0, as: UInt32.self)
        }
        file.model.graph.initializers[index].tensor = label
        try NPZFormat.write(file.model, to: "\(folder)/out.npz", original: file)
        let before = try TestSupport.bytes("\(folder)/in.npz"), after = try TestSupport.bytes("\(folder)/out.npz")
        XCTAssertEqual(before.count, after.count)
        XCTAssertLessThanOrEqual(zip(before, after).filter { $0 != $1 }.count, 1 + 8)
        let output = try TestSupport.runPython(
            """
            import numpy as np, sys
            z = np.load(sys.argv[1])
            print(z['label'].tolist(), z['w'].tolist())
            """, arguments: ["\(folder)/out.npz"])
        XCTAssertEqual(output.trimmingCharacters(in: .whitespacesAndNewlines), "['bat', 'dog'] [0.0, 1.0, 2.0, 3.0]")
    }

    func testExtendedPrecisionKeepsItsRefusal() throws {
        var header: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        let dict = Array("{'descr': '<f16', 'fortran_order': False, 'shape': (1,), }\n".utf8)
        header += [UInt8(dict.count), 0] + dict + [UInt8](repeating: 0, count: 16)
        XCTAssertThrowsError(try header.withUnsafeBytes { try NPYFormat.parse($0, name: "longdouble") }) { error in
            XCTAssertEqual(
                "\(error)", "longdouble: unsupported .npy dtype '<f16': extended-precision floats are not supported")
        }
    }
}
