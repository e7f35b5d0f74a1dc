import Foundation
import XCTest
import LetheCore
import LetheIR
@testable import LetheONNX

/// Broken and hostile files: each gives a typed error, never a crash, and no output.
final class ONNXHostileInputTests: XCTestCase {
    private var folder = ""

    override func setUpWithError() throws {
        folder = try Fixtures.makeTemporaryFolder()
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// Reads `bytes`; on success also writes the result back (patch and rebuild paths) and re-reads it.
    private func readAndRewrite(_ bytes: [UInt8], baseFolder: String? = nil) -> Error? {
        do {
            let onnx = try bytes.withUnsafeBytes {
                try ONNXFormat.read(bytes: $0, path: "fuzz.onnx", baseFolder: baseFolder ?? folder)
            }
            try ONNXFormat.write(onnx.model, to: folder + "/out.onnx", original: onnx)
            try ONNXFormat.write(onnx.model, to: folder + "/fresh.onnx", original: nil)
            _ = try ONNXFormat.read(path: folder + "/fresh.onnx")
            return nil
        } catch {
            return error
        }
    }

    private func assertCleanError(
        _ error: Error?, _ message: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        guard let error else { return }
        XCTAssertTrue(error is any LetheError, "\(message): \(type(of: error)) \(error)", file: file, line: line)
    }

    func testTruncationsAtEveryPointFailCleanly() throws {
        for name in ["rich", "dtypes_raw", "dtypes_typed", "torch_script"] {
            let bytes = try Fixtures.fileBytes(Fixtures.path(name + ".onnx"))
            var failures = 0
            let step = max(1, bytes.count / 400)
            for cut in stride(from: 0, to: bytes.count, by: step) {
                let error = readAndRewrite(Array(bytes[0..<cut]))
                if error != nil { failures += 1 }
                assertCleanError(error, "\(name) cut at \(cut)")
            }
            XCTAssertGreaterThan(failures, 0, name)
        }
    }

    func testBitFlipsNeverCrash() throws {
        var generator = SplitMix64(seed: 42)
        for name in ["rich", "dtypes_typed", "torch_dynamo"] {
            let bytes = try Fixtures.fileBytes(Fixtures.path(name + ".onnx"))
            for _ in 0..<100 {
                var flipped = bytes
                for _ in 0..<Int(generator.next() % 3 + 1) {
                    let position = Int(generator.next() % UInt64(bytes.count))
                    flipped[position] ^= UInt8(1) << UInt8(generator.next() % 8)
                }
                assertCleanError(readAndRewrite(flipped, baseFolder: Fixtures.folder), name)
            }
        }
        try? FileManager.default.removeItem(atPath: folder + "/out.onnx.data")
    }

    /// A longer read-only corruption campaign (flips, deletions, insertions), run when
    /// `LETHE_ONNX_FUZZ` gives an iteration count.
    func testLongCorruptionCampaign() throws {
        guard let count = ProcessInfo.processInfo.environment["LETHE_ONNX_FUZZ"].flatMap({ Int($0) }) else {
            throw XCTSkip("set LETHE_ONNX_FUZZ=<iterations> to run")
        }
        var generator = SplitMix64(seed: 7)
        var accepted = 0
        let names = ["rich", "dtypes_raw", "dtypes_typed", "torch_script", "torch_dynamo", "external"]
        let inputs = try names.map { try Fixtures.fileBytes(Fixtures.path($0 + ".onnx")) }
        for _ in 0..<count {
            var bytes = inputs[Int(generator.next() % UInt64(inputs.count))]
            for _ in 0..<Int(generator.next() % 4 + 1) {
                let position = Int(generator.next() % UInt64(bytes.count))
                switch generator.next() % 4 {
                case 0: bytes.remove(at: position)
                case 1: bytes.insert(UInt8(truncatingIfNeeded: generator.next()), at: position)
                case 2: bytes[position] = UInt8(truncatingIfNeeded: generator.next())
                default: bytes[position] ^= UInt8(1) << UInt8(generator.next() % 8)
                }
            }
            do {
                let onnx = try bytes.withUnsafeBytes {
                    try ONNXFormat.read(bytes: $0, path: "fuzz.onnx", baseFolder: Fixtures.folder)
                }
                var builder = ProtoRebuild(source: onnx.source, threshold: nil, dataLocation: "x.data")
                _ = try builder.buildModel(onnx.model).serializedBytes() as [UInt8]
                accepted += 1
            } catch {
                assertCleanError(error, "corruption")
            }
        }
        print("ONNX fuzz: \(count) corrupted files, \(accepted) still read")
    }

    /// A minimal valid model with one float initializer, as a proto to corrupt.
    private func model(_ configure: (inout Onnx_TensorProto) -> Void) throws -> [UInt8] {
        var tensor = Onnx_TensorProto()
        tensor.name = "w"
        tensor.dataType = ONNXDataType.float
        tensor.dims = [2]
        tensor.rawData = Data([0, 0, 128, 63, 0, 0, 0, 64])
        configure(&tensor)
        var model = Onnx_ModelProto()
        model.irVersion = 10
        var opset = Onnx_OperatorSetIdProto()
        opset.version = 21
        model.opsetImport = [opset]
        model.graph.name = "g"
        model.graph.initializer = [tensor]
        return try model.serializedBytes()
    }

    private func readError(_ bytes: [UInt8], baseFolder: String? = nil) -> Error? {
        do {
            _ = try bytes.withUnsafeBytes {
                try ONNXFormat.read(bytes: $0, path: "bad.onnx", baseFolder: baseFolder ?? folder)
            }
            return nil
        } catch {
            return error
        }
    }

    private func assertFails<E: Error>(
        _ bytes: [UInt8], as type: E.Type, containing text: String,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        let error = readError(bytes)
        XCTAssertNotNil(error, "expected \(text)", file: file, line: line)
        let inner = (error as? FileError)?.underlying ?? error
        XCTAssertTrue(inner is E, "\(String(describing: error))", file: file, line: line)
        XCTAssertTrue(
            String(describing: error ?? ONNXError.cannotWrite("")).contains(text),
            "\(String(describing: error)) should mention \(text)", file: file, line: line)
    }

    func testValidBaseline() throws {
        let onnx = try try model { _ in }.withUnsafeBytes {
            try ONNXFormat.read(bytes: $0, path: "ok.onnx", baseFolder: nil)
        }
        XCTAssertEqual(onnx.model.graph.initializer(named: "w")?.floatValues(), [1, 2])
    }

    func testDeclaredSizesThatDoNotMatchTheData() throws {
        assertFails(try model { $0.dims = [-3] }, as: ONNXError.self, containing: "negative")
        assertFails(try model { $0.dims = [3] }, as: ONNXError.self, containing: "raw_data holds 8 bytes")
        assertFails(try model { $0.dims = [1 << 40, 1 << 40] }, as: ONNXError.self, containing: "overflows")
        assertFails(try model { $0.dims = [1 << 40] }, as: LimitError.self, containing: "tensor 'w'")
        assertFails(
            try model { $0.dims = [Int64](repeating: 1, count: 100) }, as: ONNXError.self, containing: "rank 100")
        assertFails(
            try model {
                $0.clearRawData(); $0.floatData = [1]
            }, as: ONNXError.self, containing: "float_data")
        assertFails(try model { $0.clearRawData() }, as: ONNXError.self, containing: "no data")
        assertFails(try model { $0.dataType = 99 }, as: ONNXError.self, containing: "data_type 99")
        assertFails(try model { $0.dataType = 0 }, as: ONNXError.self, containing: "data_type 0")
        var segment = Onnx_TensorProto.Segment()
        segment.begin = 0
        assertFails(try model { $0.segment = segment }, as: ONNXError.self, containing: "segment")
    }

    func testHugeDeclaredLengthsAndBadFraming() throws {
        let valid = try model { _ in }
        // ModelProto.graph (field 7, length-delimited) claiming far more bytes than remain.
        var huge: [UInt8] = [0x3A]
        appendVarint(1 << 50, to: &huge)
        huge += [0x12, 0x01, 0x67]
        assertFails(huge, as: ONNXError.self, containing: "declares")
        assertFails(
            [0x3A, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], as: ONNXError.self,
            containing: "varint")
        assertFails([0x0B, 0x00], as: ONNXError.self, containing: "group")
        assertFails(valid + [0x3A, 0x00], as: ONNXError.self, containing: "more than once")
        // Subgraphs nested past the depth limit.
        var graph = Onnx_GraphProto()
        for _ in 0..<40 {
            var attribute = Onnx_AttributeProto()
            attribute.name = "body"
            attribute.type = .graph
            attribute.g = graph
            var node = Onnx_NodeProto()
            node.opType = "Loop"
            node.attribute = [attribute]
            graph = Onnx_GraphProto()
            graph.node = [node]
        }
        var deep = Onnx_ModelProto()
        deep.graph = graph
        assertFails(try deep.serializedBytes(), as: ONNXError.self, containing: "nest deeper")
    }

    private func externalModel(location: String, offset: Int = 0, length: Int? = 8) throws -> [UInt8] {
        try model { tensor in
            tensor.clearRawData()
            tensor.dataLocation = .external
            var entries = [entry(key: "location", value: location), entry(key: "offset", value: String(offset))]
            if let length { entries.append(entry(key: "length", value: String(length))) }
            tensor.externalData = entries
        }
    }

    func testExternalDataEscapesAreRefused() throws {
        let outside = try Fixtures.makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: outside) }
        let data: [UInt8] = [0, 0, 128, 63, 0, 0, 0, 64]
        FileManager.default.createFile(atPath: outside + "/secret.bin", contents: Data(data))
        FileManager.default.createFile(atPath: folder + "/ok.bin", contents: Data(data))
        try FileManager.default.createSymbolicLink(
            atPath: folder + "/link.bin", withDestinationPath: outside + "/secret.bin")
        try FileManager.default.createSymbolicLink(atPath: folder + "/dir", withDestinationPath: outside)

        // The baseline works.
        let ok = try try externalModel(location: "ok.bin").withUnsafeBytes {
            try ONNXFormat.read(bytes: $0, path: "m.onnx", baseFolder: folder)
        }
        XCTAssertEqual(ok.model.graph.initializer(named: "w")?.floatValues(), [1, 2])

        assertFails(try externalModel(location: outside + "/secret.bin"), as: ONNXError.self, containing: "absolute")
        assertFails(
            try externalModel(location: "../" + ONNXFormat.fileName(of: outside) + "/secret.bin"),
            as: ONNXError.self, containing: "'..'")
        assertFails(try externalModel(location: "sub/../../x"), as: ONNXError.self, containing: "'..'")
        assertFails(try externalModel(location: "link.bin"), as: ONNXError.self, containing: "outside")
        assertFails(try externalModel(location: "dir/secret.bin"), as: ONNXError.self, containing: "outside")
        assertFails(
            try externalModel(location: "missing.bin"), as: ONNXError.self, containing: "'missing.bin' does not exist")
        assertFails(try externalModel(location: "ok.bin", offset: 4), as: ONNXError.self, containing: "beyond the end")
        assertFails(
            try externalModel(location: "ok.bin", offset: Int.max), as: ONNXError.self, containing: "beyond the end")
        assertFails(
            try externalModel(location: "ok.bin", length: 4), as: ONNXError.self, containing: "external data length")
        assertFails(try externalModel(location: ""), as: ONNXError.self, containing: "no location")
        assertFails(
            try model {
                $0.clearRawData(); $0.dataLocation = .external
                $0.externalData = [entry(key: "location", value: "ok.bin"), entry(key: "offset", value: "-1")]
            },
            as: ONNXError.self, containing: "offset")
        XCTAssertNotNil(
            try externalModel(location: "ok.bin").withUnsafeBytes {
                try? ONNXFormat.read(bytes: $0, path: "m.onnx", baseFolder: nil)
            } == nil ? 1 : nil, "external data without a folder must be refused")
    }

    func testFailedWritesLeaveNothingBehind() throws {
        var graph = Graph(name: "g")
        graph.nodes = [
            Node(opType: "Custom", inputs: [], outputs: ["y"], attributes: [("blob", .opaque(kind: "SPARSE_TENSOR"))])
        ]
        let model = Model(graph: graph, irVersion: 10, opsets: [("", 21)])
        XCTAssertThrowsError(try ONNXFormat.write(model, to: folder + "/x.onnx", original: nil))
        XCTAssertThrowsError(try ONNXFormat.write(model, to: folder + "/missing/x.onnx", original: nil))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), [])
    }
}
