import Foundation
import LetheCore
import LetheIR
import XCTest
@testable import LetheNumPy
import LetheZip

final class NPZTests: XCTestCase {
    private func assertMatchesManifest(
        _ file: NPZFile, _ name: String, file path: StaticString = #filePath,
        line: UInt = #line
    ) throws {
        let expected = try TestSupport.manifest("npz")[name] as! [[String: Any]]
        let initializers = file.model.graph.initializers
        XCTAssertEqual(initializers.map(\.name), expected.map { $0["name"] as! String }, file: path, line: line)
        for (initializer, entry) in zip(initializers, expected) {
            XCTAssertEqual(
                initializer.tensor.dtype.rawValue, entry["dtype"] as? String, initializer.name, file: path, line: line)
            XCTAssertEqual(initializer.tensor.shape, entry["shape"] as? [Int], initializer.name, file: path, line: line)
            XCTAssertEqual(
                TestSupport.hex(initializer.tensor), entry["hex"] as? String, initializer.name, file: path, line: line)
        }
    }

    func testReadsStoredAndDeflatedFixtures() throws {
        for name in ["stored.npz", "deflated.npz", "data.npz"] {
            let file = try NPZFormat.read(path: TestSupport.fixture(name))
            try assertMatchesManifest(file, name)
        }
        let deflated = try NPZFormat.read(path: TestSupport.fixture("deflated.npz")).memberInfo
        XCTAssertTrue(deflated.allSatisfy(\.isCompressed))
        XCTAssertEqual(deflated.first?.memberName, "bool.npy")
        XCTAssertEqual(deflated.first?.arrayName, "bool")
        XCTAssertEqual(deflated.first?.offset, 0)
        XCTAssertEqual(deflated.first?.uncompressedSize, 128 + 6)
        let arrays = try NPZFormat.readArrays(path: TestSupport.fixture("data.npz"))
        XCTAssertEqual(arrays.map(\.name), ["x", "y"])
        XCTAssertEqual(arrays[1].tensor.int64Values(), [0, 1, 2, 1, 0])
    }

    func testUnmodifiedRewriteIsByteIdentical() throws {
        let folder = try TestSupport.temporaryDirectory()
        for name in ["stored.npz", "deflated.npz", "data.npz"] {
            let file = try NPZFormat.read(path: TestSupport.fixture(name))
            let out = "\(folder)/\(name)"
            try NPZFormat.write(file.model, to: out, original: file)
            XCTAssertEqual(try TestSupport.bytes(out), try TestSupport.bytes(TestSupport.fixture(name)), name)
        }
    }

    /// Changing a stored member's values patches it in place: only its bytes and CRCs differ.
    func testPatchedStoredMember() throws {
        let folder = try TestSupport.temporaryDirectory()
        var file = try NPZFormat.read(path: TestSupport.fixture("stored.npz"))
        let index = file.model.graph.initializerIndex(named: "f4")!
        let patched = Tensor(shape: [2, 3], values: [Float](repeating: 0.25, count: 6))
        file.model.graph.initializers[index].tensor = patched
        let out = "\(folder)/patched.npz"
        try NPZFormat.write(file.model, to: out, original: file)
        let before = try TestSupport.bytes(TestSupport.fixture("stored.npz")), after = try TestSupport.bytes(out)
        XCTAssertEqual(before.count, after.count)
        let differing = zip(before, after).filter { $0 != $1 }.count
        XCTAssertGreaterThan(differing, 0)
        XCTAssertLessThanOrEqual(differing, 24 + 8)
        let reread = try NPZFormat.read(path: out)
        XCTAssertTrue(reread.model.graph.initializer(named: "f4")!.isBitwiseEqual(to: patched))
        XCTAssertTrue(
            reread.model.graph.initializer(named: "c16")!
                .isBitwiseEqual(to: file.model.graph.initializer(named: "c16")!))
        // Python agrees (CRCs are checked by zipfile on read).
        let output = try TestSupport.runPython(
            """
            import numpy as np, sys
            z = np.load(sys.argv[1])
            print(z['f4'].tolist() == [[0.25]*3]*2, list(z.keys())[:3])
            """, arguments: [out])
        XCTAssertEqual(output.trimmingCharacters(in: .whitespacesAndNewlines), "True ['bool', 'i1', 'i2']")
    }

    /// Fresh compressed writes are byte-identical to np.savez_compressed.
    func testFreshCompressedMatchesNumPy() throws {
        let folder = try TestSupport.temporaryDirectory()
        let file = try NPZFormat.read(path: TestSupport.fixture("deflated.npz"))
        // NumPy writes the big-endian and Fortran members with their own header, so compare
        // against a reference made from Lethe's normalized arrays.
        let arrays = file.model.graph.initializers.map { (name: $0.name, tensor: $0.tensor) }
        let out = "\(folder)/lethe.npz"
        try NPZFormat.writeArrays(arrays, to: out, compressed: true)
        try TestSupport.runPython(
            """
            import numpy as np, sys
            z = np.load(sys.argv[1])
            d = {k: z[k].astype(z[k].dtype.newbyteorder('<')).copy(order='C') for k in z.keys()}
            np.savez_compressed(sys.argv[2], **d)
            """, arguments: [TestSupport.fixture("deflated.npz"), "\(folder)/numpy.npz"])
        XCTAssertEqual(try TestSupport.bytes(out), try TestSupport.bytes("\(folder)/numpy.npz"))
    }

    /// Files Lethe writes load in NumPy with identical bytes per array (stored and deflated).
    func testNumPyLoadsLetheOutput() throws {
        let folder = try TestSupport.temporaryDirectory()
        let file = try NPZFormat.read(path: TestSupport.fixture("stored.npz"))
        for compressed in [false, true] {
            let out = "\(folder)/out-\(compressed).npz"
            try NPZFormat.writeArrays(
                file.model.graph.initializers.map { ($0.name, $0.tensor) }, to: out,
                compressed: compressed)
            let listing = try TestSupport.runPython(
                """
                import numpy as np, sys
                z = np.load(sys.argv[1])
                for k in z.keys():
                    a = z[k]
                    print(k, a.dtype.name, list(a.shape), np.ascontiguousarray(a).tobytes().hex())
                """, arguments: [out])
            let expected = file.model.graph.initializers.map {
                "\($0.name) \($0.tensor.dtype.rawValue) \($0.tensor.shape) \(TestSupport.hex($0.tensor))"
            }
            XCTAssertEqual(listing.split(separator: "\n").map(String.init), expected)
            // And Lethe reads its own output back; stored arrays are aligned and mapped.
            let reread = try NPZFormat.read(path: out)
            for (a, b) in zip(reread.model.graph.initializers, file.model.graph.initializers) {
                XCTAssertTrue(a.tensor.isBitwiseEqual(to: b.tensor), a.name)
                if !compressed && a.tensor.byteCount > 0 {
                    XCTAssertNotNil(a.tensor.storage.mappedFile, "\(a.name) should be zero-copy")
                }
            }
        }
    }

    func testFreshPythonFilesAndLargeZip64Fields() throws {
        let folder = try TestSupport.temporaryDirectory()
        try TestSupport.runPython(
            """
            import numpy as np, sys, os
            d = sys.argv[1]
            a = {f"w{i}": np.full((3, i + 1), i, dtype=np.float32) for i in range(40)}
            np.savez(os.path.join(d, "many.npz"), **a)
            np.savez_compressed(os.path.join(d, "many_c.npz"), **a)
            """, arguments: [folder])
        for name in ["many.npz", "many_c.npz"] {
            let file = try NPZFormat.read(path: "\(folder)/\(name)")
            XCTAssertEqual(file.model.graph.initializers.count, 40)
            XCTAssertEqual(file.model.graph.initializers[7].tensor.floatValues(), [Float](repeating: 7, count: 24))
            let out = "\(folder)/copy-\(name)"
            try NPZFormat.write(file.model, to: out, original: file)
            XCTAssertEqual(try TestSupport.bytes(out), try TestSupport.bytes("\(folder)/\(name)"))
        }
    }

    func testEmptyArchive() throws {
        let folder = try TestSupport.temporaryDirectory()
        try TestSupport.runPython("import numpy as np, sys; np.savez(sys.argv[1])", arguments: ["\(folder)/numpy.npz"])
        let file = try NPZFormat.read(path: "\(folder)/numpy.npz")
        XCTAssertTrue(file.model.graph.initializers.isEmpty)
        try NPZFormat.writeArrays([], to: "\(folder)/lethe.npz")
        XCTAssertEqual(try TestSupport.bytes("\(folder)/lethe.npz"), try TestSupport.bytes("\(folder)/numpy.npz"))
    }

    func testRefusesBFloat16AndLeavesNoFile() throws {
        let folder = try TestSupport.temporaryDirectory()
        let out = "\(folder)/bf16.npz"
        let model = Model(
            graph: Graph(initializers: [
                Initializer(name: "a", tensor: Tensor(shape: [1], values: [Float(1)])),
                Initializer(name: "w", tensor: Tensor(shape: [2], values: [BFloat16(1), BFloat16(2)]))
            ]))
        XCTAssertThrowsError(try NPZFormat.write(model, to: out)) { error in
            XCTAssertTrue("\(error)".contains("NumPy has no bfloat16; convert with dtype f32"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), [])
    }

    // MARK: hostile archives

    private func assertRefused(
        _ bytes: [UInt8], limits: Limits = .default, _ message: String,
        file: StaticString = #filePath, line: UInt = #line
    ) throws -> any Error {
        let folder = try TestSupport.temporaryDirectory()
        let path = "\(folder)/bad.npz"
        try TestSupport.write(bytes, to: path)
        do {
            _ = try NPZFormat.read(path: path, limits: limits)
            XCTFail("accepted: \(message)", file: file, line: line)
            return UsageError("accepted")
        } catch {
            XCTAssertTrue(error is LetheError, "\(error)", file: file, line: line)
            return (error as? FileError)?.underlying ?? error
        }
    }

    func testTruncatedAtEveryByte() throws {
        let bytes = try TestSupport.bytes(TestSupport.fixture("data.npz"))
        let folder = try TestSupport.temporaryDirectory()
        let path = "\(folder)/cut.npz"
        for cut in 0..<bytes.count {
            try TestSupport.write(Array(bytes[0..<cut]), to: path)
            XCTAssertThrowsError(try NPZFormat.read(path: path), "cut at \(cut)")
        }
    }

    func testEveryFlippedByteIsCaughtOrHarmless() throws {
        // Flipping any byte either fails cleanly or yields arrays (CRC guards the data).
        let bytes = try TestSupport.bytes(TestSupport.fixture("data.npz"))
        let folder = try TestSupport.temporaryDirectory()
        let path = "\(folder)/flip.npz"
        var accepted = 0
        for index in 0..<bytes.count {
            var copy = bytes
            copy[index] ^= 0x5A
            try TestSupport.write(copy, to: path)
            if let file = try? NPZFormat.read(path: path) {
                accepted += 1
                XCTAssertEqual(file.model.graph.initializers.count, 2)
            }
        }
        XCTAssertLessThan(accepted, bytes.count / 4)
    }

    func testBadCRC() throws {
        var bytes = try TestSupport.bytes(TestSupport.fixture("data.npz"))
        bytes[200] ^= 0x01 // inside x's data
        let error = try assertRefused(bytes, "bad CRC")
        guard case ZipError.crcMismatch = error else { return XCTFail("\(error)") }
        var deflated = try TestSupport.bytes(TestSupport.fixture("deflated.npz"))
        deflated[120] ^= 0x10
        _ = try assertRefused(deflated, "corrupt deflate stream")
    }

    func testWrongMagicAndNotAnArray() throws {
        _ = try assertRefused(Array("hello, this is not a zip archive at all......".utf8), "not a zip")
        _ = try assertRefused([], "empty")
        let folder = try TestSupport.temporaryDirectory()
        try TestSupport.runPython(
            """
            import zipfile, sys
            with zipfile.ZipFile(sys.argv[1], 'w') as z:
                z.writestr('readme.txt', 'hello')
            """, arguments: ["\(folder)/text.npz"])
        XCTAssertThrowsError(try NPZFormat.read(path: "\(folder)/text.npz")) { error in
            XCTAssertTrue("\(error)".contains("not a .npy array"), "\(error)")
        }
    }

    func testZipBombGuards() throws {
        let folder = try TestSupport.temporaryDirectory()
        try TestSupport.runPython(
            """
            import numpy as np, sys
            np.savez_compressed(sys.argv[1], z=np.zeros(4_000_000, dtype=np.uint8))
            """, arguments: ["\(folder)/zeros.npz"])
        let bytes = try TestSupport.bytes("\(folder)/zeros.npz")
        // The real ratio (~1000) passes the default guard but not a tighter one.
        XCTAssertNoThrow(try NPZFormat.read(path: "\(folder)/zeros.npz"))
        var tight = Limits.default
        tight.maxDeflateRatio = 100
        let error = try assertRefused(bytes, limits: tight, "ratio")
        guard case ZipError.suspiciousRatio = error else { return XCTFail("\(error)") }

        // Declare a smaller uncompressed size than the stream holds: never inflate past it.
        let file = try NPZFormat.read(path: "\(folder)/zeros.npz")
        let member = file.members[0].zip
        var lying = bytes
        func put64(_ value: UInt64, at offset: Int) {
            for i in 0..<8 { lying[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
        }
        func put32(_ value: UInt32, at offset: Int) {
            for i in 0..<4 { lying[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i))) }
        }
        let smaller = UInt64(member.uncompressedSize - 1000)
        put64(smaller, at: member.localHeaderOffset + 30 + member.name.utf8.count + 4)
        put32(UInt32(smaller), at: member.centralOffset + 24)
        _ = try assertRefused(lying, "stream longer than declared")

        // A huge declared size with a tiny stream is refused before anything is allocated.
        lying = bytes
        put64(1 << 40, at: member.localHeaderOffset + 30 + member.name.utf8.count + 4)
        put32(0xFFFF_FFFF, at: member.centralOffset + 24)
        _ = try assertRefused(lying, "declared 1 TB")
    }

    func testDuplicateAndOverlappingMembers() throws {
        let folder = try TestSupport.temporaryDirectory()
        try TestSupport.runPython(
            """
            import zipfile, sys, io, numpy as np, warnings
            warnings.simplefilter('ignore')
            b = io.BytesIO(); np.save(b, np.arange(3))
            with zipfile.ZipFile(sys.argv[1], 'w') as z:
                z.writestr('a.npy', b.getvalue())
                z.writestr('a.npy', b.getvalue())
            """, arguments: ["\(folder)/dup.npz"])
        XCTAssertThrowsError(try NPZFormat.read(path: "\(folder)/dup.npz")) { error in
            guard case ZipError.duplicateMember = (error as! FileError).underlying else { return XCTFail("\(error)") }
        }
        // Two central entries pointing at one local header.
        var bytes = try TestSupport.bytes(TestSupport.fixture("data.npz"))
        let file = try NPZFormat.read(path: TestSupport.fixture("data.npz"))
        let second = file.members[1].zip
        for i in 0..<4 { bytes[second.centralOffset + 42 + i] = 0 }
        _ = try assertRefused(bytes, "overlap / name mismatch")
    }

    /// An archive whose end record defers to ZIP64 records (as writers do past 65,535 members or
    /// 4 GB) reads the same.
    func testZip64EndRecords() throws {
        let bytes = try TestSupport.bytes(TestSupport.fixture("data.npz"))
        let end = bytes.count - 22
        func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }
        func read32(_ offset: Int) -> UInt32 {
            bytes[offset..<(offset + 4)].reversed().reduce(0) { $0 << 8 | UInt32($1) }
        }
        let count = UInt64(bytes[end + 10]) | UInt64(bytes[end + 11]) << 8
        let size = UInt64(read32(end + 12)), offset = UInt64(read32(end + 16))
        var record = le(UInt32(0x0606_4B50)) + le(UInt64(44)) + le(UInt16(45)) + le(UInt16(45))
        record += le(UInt32(0)) + le(UInt32(0)) + le(count) + le(count) + le(size) + le(offset)
        let locator = le(UInt32(0x0706_4B50)) + le(UInt32(0)) + le(UInt64(end)) + le(UInt32(1))
        var endRecord = Array(bytes[end...])
        endRecord.replaceSubrange(8..<20, with: [UInt8](repeating: 0xFF, count: 12))
        let zip64 = Array(bytes[..<end]) + record + locator + endRecord
        let folder = try TestSupport.temporaryDirectory()
        try TestSupport.write(zip64, to: "\(folder)/zip64.npz")
        let file = try NPZFormat.read(path: "\(folder)/zip64.npz")
        try assertMatchesManifest(file, "data.npz")
        // Python agrees the archive is valid.
        let keys = try TestSupport.runPython(
            "import numpy as np, sys; print(sorted(np.load(sys.argv[1]).keys()))",
            arguments: ["\(folder)/zip64.npz"])
        XCTAssertEqual(keys.trimmingCharacters(in: .whitespacesAndNewlines), "['x', 'y']")
        // A locator pointing past itself is refused.
        var broken = zip64
        broken.replaceSubrange((end + 56 + 8)..<(end + 56 + 16), with: le(UInt64(bytes.count * 4)))
        _ = try assertRefused(broken, "bad ZIP64 locator")
    }

    func testPickledMemberRefused() throws {
        let folder = try TestSupport.temporaryDirectory()
        try TestSupport.runPython(
            """
            import numpy as np, sys
            np.savez(sys.argv[1], w=np.ones(3, dtype=np.float32), o=np.array([{'x': 1}], dtype=object))
            np.savez_compressed(sys.argv[2], o=np.array([{'x': 1}], dtype=object))
            """, arguments: ["\(folder)/pickle.npz", "\(folder)/pickle_c.npz"])
        for name in ["pickle.npz", "pickle_c.npz"] {
            XCTAssertThrowsError(try NPZFormat.read(path: "\(folder)/\(name)")) { error in
                guard case NPYError.pickledArray(let member) = (error as! FileError).underlying else {
                    return XCTFail("\(error)")
                }
                XCTAssertEqual(member, "o.npy")
            }
        }
    }

    func testEntryCountLimit() throws {
        var limits = Limits.default
        limits.maxZipEntries = 1
        let bytes = try TestSupport.bytes(TestSupport.fixture("data.npz"))
        let error = try assertRefused(bytes, limits: limits, "too many entries")
        guard case ZipError.tooManyEntries = error else { return XCTFail("\(error)") }
    }
}
