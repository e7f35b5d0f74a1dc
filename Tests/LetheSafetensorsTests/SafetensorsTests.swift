import Foundation
import LetheCore
import LetheIR
import XCTest
@testable import LetheSafetensors

final class SafetensorsTests: XCTestCase {
    private let fixtures = ["every_dtype.safetensors", "empty_and_scalar.safetensors", "model.safetensors"]

    func testFixturesMatchReferenceValues() throws {
        let manifest = try TestSupport.manifest("safetensors")
        for name in fixtures {
            let expected = manifest[name] as! [String: Any]
            let file = try SafetensorsFormat.read(path: TestSupport.fixture(name))
            let metadata = (expected["metadata"] as! [[String]]).map { ($0[0], $0[1]) }
            XCTAssertEqual(file.model.metadata.map(\.key), metadata.map(\.0), name)
            XCTAssertEqual(file.model.metadata.map(\.value), metadata.map(\.1), name)
            let tensors = expected["tensors"] as! [[String: Any]]
            let initializers = file.model.graph.initializers
            XCTAssertEqual(initializers.map(\.name), tensors.map { $0["name"] as! String }, name)
            for (initializer, entry) in zip(initializers, tensors) {
                XCTAssertEqual(SafetensorsFormat.name(of: initializer.tensor.dtype), entry["dtype"] as? String)
                XCTAssertEqual(initializer.tensor.shape, entry["shape"] as? [Int], initializer.name)
                XCTAssertEqual(TestSupport.hex(initializer.tensor), entry["hex"] as? String, initializer.name)
            }
        }
        let every = try SafetensorsFormat.read(path: TestSupport.fixture("every_dtype.safetensors"))
        XCTAssertEqual(every.model.graph.initializers.count, 18)
        XCTAssertEqual(every.model.graph.initializer(named: "i16")!.int64Values(), [-32768, -2, 3, 32767])
        let info = every.entryInfo
        XCTAssertEqual(info.first?.dtype, "U64")
        XCTAssertEqual(info.first?.fileRange.lowerBound, 8 + every.headerByteCount)
        XCTAssertEqual(
            info.last?.fileRange.upperBound, try TestSupport.bytes(TestSupport.fixture("every_dtype.safetensors")).count
        )
        // Aligned tensors are views of the mapping, not copies.
        XCTAssertNotNil(every.model.graph.initializer(named: "f64")!.storage.mappedFile)
    }

    func testDTypeNames() {
        for dtype in DType.allCases {
            guard let name = SafetensorsFormat.name(of: dtype) else {
                // safetensors has no complex128 and no strings.
                XCTAssertTrue([.complex128, .bytes, .unicode].contains(dtype), "\(dtype)")
                continue
            }
            XCTAssertEqual(SafetensorsFormat.dtype(named: name), dtype)
        }
        XCTAssertNil(SafetensorsFormat.dtype(named: "F8_E8M0"))
        XCTAssertNil(SafetensorsFormat.dtype(named: "f32"))
    }

    func testUnmodifiedRewriteIsByteIdentical() throws {
        let folder = try TestSupport.temporaryDirectory()
        for name in fixtures + ["numpy_written.safetensors"] {
            let file = try SafetensorsFormat.read(path: TestSupport.fixture(name))
            let out = "\(folder)/\(name)"
            try SafetensorsFormat.write(file.model, to: out, original: file)
            XCTAssertEqual(try TestSupport.bytes(out), try TestSupport.bytes(TestSupport.fixture(name)), name)
        }
    }

    func testPatchChangesOnlyThatTensor() throws {
        let folder = try TestSupport.temporaryDirectory()
        var file = try SafetensorsFormat.read(path: TestSupport.fixture("model.safetensors"))
        let index = file.model.graph.initializerIndex(named: "fc.weight")!
        var tensor = file.model.graph.initializers[index].tensor
        tensor.withUnsafeMutableBufferPointer(of: Float.self) { $0[0] = 42 }
        file.model.graph.initializers[index].tensor = tensor
        let out = "\(folder)/patched.safetensors"
        try SafetensorsFormat.write(file.model, to: out, original: file)
        let before = try TestSupport.bytes(TestSupport.fixture("model.safetensors")), after = try TestSupport.bytes(out)
        XCTAssertEqual(before.count, after.count)
        let differing = zip(before, after).filter { $0 != $1 }.count
        XCTAssertGreaterThan(differing, 0)
        XCTAssertLessThanOrEqual(differing, 4)
        let output = try TestSupport.runPython(
            """
            import sys
            from safetensors.numpy import load_file
            print(load_file(sys.argv[1])['fc.weight'][0, 0])
            """, arguments: [out])
        XCTAssertEqual(output.trimmingCharacters(in: .whitespacesAndNewlines), "42.0")
    }

    /// A fresh write (no original) is byte-identical to the reference writer's.
    func testFreshWriteMatchesReference() throws {
        let folder = try TestSupport.temporaryDirectory()
        for name in ["numpy_written.safetensors", "empty_and_scalar.safetensors"] {
            let file = try SafetensorsFormat.read(path: TestSupport.fixture(name))
            var model = file.model
            model.graph.initializers.reverse() // order in the IR must not matter for a fresh file
            let out = "\(folder)/fresh-\(name)"
            try SafetensorsFormat.write(model, to: out)
            XCTAssertEqual(try TestSupport.bytes(out), try TestSupport.bytes(TestSupport.fixture(name)), name)
        }
    }

    /// Files Lethe writes load in the reference library with identical bytes per tensor.
    func testReferenceLoadsLetheOutput() throws {
        let folder = try TestSupport.temporaryDirectory()
        let file = try SafetensorsFormat.read(path: TestSupport.fixture("every_dtype.safetensors"))
        var model = file.model
        model.metadata.append((key: "lethe", value: "tab\there \u{1} and \\ \"q\" / é"))
        let out = "\(folder)/every.safetensors"
        try SafetensorsFormat.write(model, to: out)
        let listing = try TestSupport.runPython(
            """
            import sys, json
            from safetensors import safe_open, deserialize
            with safe_open(sys.argv[1], framework='numpy') as f:
                print(json.dumps(f.metadata(), sort_keys=True))
            # The reference reader's own validation and raw bytes (NumPy lacks bf16 and f8).
            with open(sys.argv[1], 'rb') as f:
                for k, v in sorted(deserialize(f.read())):
                    print(k, v['shape'], bytes(v['data']).hex())
            """, arguments: [out])
        var lines = listing.split(separator: "\n").map(String.init)
        let metadata = try JSONSerialization.jsonObject(with: Data(lines.removeFirst().utf8)) as! [String: String]
        XCTAssertEqual(metadata["lethe"], "tab\there \u{1} and \\ \"q\" / é")
        XCTAssertEqual(metadata["alpha"], "é ünïcode \"quoted\"")
        let expected = model.graph.initializers.sorted { $0.name < $1.name }
            .map { "\($0.name) \($0.tensor.shape) \(TestSupport.hex($0.tensor))" }
        XCTAssertEqual(lines, expected)
        // Lethe reads it back with the metadata in the order it wrote it.
        let reread = try SafetensorsFormat.read(path: out)
        XCTAssertEqual(reread.model.metadata.map(\.key), model.metadata.map(\.key))
    }

    func testEmptyFileMatchesReference() throws {
        let folder = try TestSupport.temporaryDirectory()
        try SafetensorsFormat.write(Model(graph: Graph()), to: "\(folder)/empty.safetensors")
        let bytes = try TestSupport.bytes("\(folder)/empty.safetensors")
        XCTAssertEqual(bytes, [8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32])
        let file = try bytes.withUnsafeBytes { try SafetensorsFormat.read(bytes: $0, path: "empty") }
        XCTAssertTrue(file.model.graph.initializers.isEmpty)
        try SafetensorsFormat.write(
            Model(graph: Graph(), metadata: [("framework", "pt")]), to: "\(folder)/meta.safetensors")
        XCTAssertEqual(
            String(decoding: try TestSupport.bytes("\(folder)/meta.safetensors").dropFirst(8), as: UTF8.self),
            #"{"__metadata__":{"framework":"pt"}}     "#)
    }

    func testReadFromBytesAndComplex128Refused() throws {
        let bytes = try TestSupport.bytes(TestSupport.fixture("model.safetensors"))
        let file = try bytes.withUnsafeBytes { try SafetensorsFormat.read(bytes: $0, path: "mem") }
        XCTAssertEqual(file.model.graph.initializers.count, 5)
        XCTAssertEqual(file.model.graph.initializer(named: "bn.num_batches_tracked")!.int64Values(), [17])
        let folder = try TestSupport.temporaryDirectory()
        let model = Model(
            graph: Graph(initializers: [
                Initializer(name: "z", tensor: Tensor(zeros: .complex128, shape: [2]))
            ]))
        XCTAssertThrowsError(try SafetensorsFormat.write(model, to: "\(folder)/z.safetensors"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), [])
    }

    // MARK: hostile files

    private func file(header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) -> [UInt8] {
        let json = Array(header.utf8)
        let length = declaredLength ?? UInt64(json.count)
        return withUnsafeBytes(of: length.littleEndian) { Array($0) } + json + data
    }

    @discardableResult
    private func assertRefused(
        _ bytes: [UInt8], _ message: String, file: StaticString = #filePath,
        line: UInt = #line
    ) -> (any Error)? {
        do {
            _ = try bytes.withUnsafeBytes { try SafetensorsFormat.read(bytes: $0, path: "bad.safetensors") }
            XCTFail("accepted: \(message)", file: file, line: line)
            return nil
        } catch {
            XCTAssertTrue(error is LetheError, "\(error)", file: file, line: line)
            return (error as? FileError)?.underlying ?? error
        }
    }

    func testTruncatedAtEveryByte() throws {
        for name in ["empty_and_scalar.safetensors", "model.safetensors"] {
            let bytes = try TestSupport.bytes(TestSupport.fixture(name))
            for cut in 0..<bytes.count {
                assertRefused(Array(bytes[0..<cut]), "\(name) cut at \(cut)")
            }
        }
    }

    /// Flipping any byte of a small file fails cleanly or yields a consistent model.
    func testEveryFlippedByte() throws {
        let bytes = try TestSupport.bytes(TestSupport.fixture("empty_and_scalar.safetensors"))
        var accepted = 0
        for index in 0..<bytes.count {
            var copy = bytes
            copy[index] ^= 0x24
            if let file = try? copy.withUnsafeBytes({ try SafetensorsFormat.read(bytes: $0, path: "flip") }) {
                accepted += 1
                let total = file.model.graph.initializers.reduce(0) { $0 + $1.tensor.byteCount }
                XCTAssertEqual(8 + file.headerLength + total, bytes.count)
            }
        }
        XCTAssertLessThan(accepted, bytes.count)
    }

    func testHostileHeaders() {
        let eight = [UInt8](repeating: 0, count: 8)
        let good = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        XCTAssertNoThrow(
            try file(header: good, data: eight).withUnsafeBytes {
                try SafetensorsFormat.read(bytes: $0, path: "ok")
            })
        if case SafetensorsError.headerTooLarge = assertRefused(
            file(
                header: good, data: eight,
                declaredLength: 200_000_000), "huge header")!
        {
        } else {
            XCTFail()
        }
        assertRefused(file(header: good, data: eight, declaredLength: 1 << 63), "2^63 header")
        assertRefused(file(header: good, data: eight, declaredLength: 500), "header past end")
        assertRefused(file(header: "[1,2]"), "not an object")
        assertRefused(file(header: "{\"a\":"), "bad json")
        assertRefused(file(header: good + "x", data: eight), "trailing garbage")
        if case SafetensorsError.duplicateKey = assertRefused(
            file(
                header:
                    #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                data: eight), "duplicate names")!
        {
        } else {
            XCTFail()
        }
        assertRefused(
            file(
                header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"dtype":"F32"}}"#,
                data: [0, 0, 0, 0]), "duplicate field")
        if case SafetensorsError.invalidOffsets = assertRefused(
            file(
                header:
                    #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                data: eight), "overlap")!
        {
        } else {
            XCTFail()
        }
        if case SafetensorsError.invalidOffsets = assertRefused(
            file(
                header:
                    #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[2],"data_offsets":[6,8]}}"#,
                data: eight), "gap")!
        {
        } else {
            XCTFail()
        }
        if case SafetensorsError.sizeMismatch = assertRefused(
            file(
                header:
                    #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: eight), "size")!
        {
        } else {
            XCTFail()
        }
        if case SafetensorsError.incompleteBuffer = assertRefused(
            file(header: good, data: eight + [0]),
            "extra data")!
        {
        } else {
            XCTFail()
        }
        assertRefused(
            file(header: #"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, data: eight), "negative")
        assertRefused(
            file(header: #"{"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}"#, data: eight), "float dim")
        assertRefused(
            file(
                header: #"{"a":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,8]}}"#,
                data: eight), "dim over 2^64")
        if case SafetensorsError.shapeOverflow = assertRefused(
            file(
                header:
                    #"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#, data: eight),
            "overflowing product")!
        {
        } else {
            XCTFail()
        }
        assertRefused(
            file(header: #"{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}"#, data: eight), "backwards")
        assertRefused(file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}}"#, data: eight), "one offset")
        assertRefused(file(header: #"{"a":{"dtype":"F32","shape":[2]}}"#, data: eight), "missing offsets")
        if case SafetensorsError.unknownDType = assertRefused(
            file(
                header:
                    #"{"a":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}}"#, data: eight), "unknown dtype")!
        {
        } else {
            XCTFail()
        }
        if case SafetensorsError.unsupportedDType = assertRefused(
            file(
                header:
                    #"{"a":{"dtype":"F8_E8M0","shape":[8],"data_offsets":[0,8]}}"#, data: eight), "e8m0")!
        {
        } else {
            XCTFail()
        }
        if case SafetensorsError.invalidMetadata = assertRefused(
            file(
                header:
                    #"{"__metadata__":{"k":1},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: eight),
            "metadata number")!
        {
        } else {
            XCTFail()
        }
        assertRefused(file(header: #"{"__metadata__":"x"}"#), "metadata string")
        assertRefused(file(header: String(repeating: "[", count: 10_000)), "deep nesting")
        assertRefused([0xFF] + file(header: good, data: eight).dropFirst(), "length byte corrupted")
        var invalidUTF8 = file(header: #"{"a\#u{00E9}":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: eight)
        invalidUTF8[11] = 0xFF
        assertRefused(invalidUTF8, "invalid UTF-8")
        assertRefused([1, 2, 3], "shorter than 8 bytes")
    }

    func testEscapedNamesAndUnknownFieldsAccepted() throws {
        let header = #"{"w\u00e9\n":{"dtype":"I8","shape":[2],"data_offsets":[0,2],"extra":[1,{"x":null}]}}"#
        let bytes = file(header: header, data: [1, 255])
        let file = try bytes.withUnsafeBytes { try SafetensorsFormat.read(bytes: $0, path: "ok") }
        XCTAssertEqual(file.model.graph.initializers[0].name, "wé\n")
        XCTAssertEqual(file.model.graph.initializers[0].tensor.int64Values(), [1, -1])
    }
}
