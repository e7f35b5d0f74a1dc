import Foundation
import XCTest
import LetheCore
import LetheIR
@testable import LetheONNX

final class ONNXWriterTests: XCTestCase {
    private var folder = ""

    override func setUpWithError() throws {
        folder = try Fixtures.makeTemporaryFolder()
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// Checks a written model with onnx.checker and returns every initializer's values as the
    /// reference library decodes them, keyed by name.
    private func referenceValues(_ path: String) throws -> [String: [Double]] {
        let script = """
            import json, sys, onnx
            from onnx import numpy_helper
            onnx.checker.check_model(sys.argv[1], full_check=True)
            m = onnx.load(sys.argv[1])
            out = {}
            def walk(g):
                for t in g.initializer:
                    if t.data_type not in (8, 21, 22):
                        out[t.name] = numpy_helper.to_array(t).astype('float64').flatten().tolist()
                for n in g.node:
                    for a in n.attribute:
                        if a.type == onnx.AttributeProto.GRAPH: walk(a.g)
            walk(m.graph)
            print(json.dumps(out))
            """
        let json = try Python.run(script, [path])
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: [Double]]
        return try XCTUnwrap(object)
    }

    private func runWithONNXRuntime(_ path: String, input: String, shape: [Int]) throws -> [Double] {
        let script = """
            import json, sys, numpy as np, onnxruntime as ort
            s = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
            shape = json.loads(sys.argv[3])
            x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape) / 7.0
            y = s.run(None, {sys.argv[2]: x})[0]
            print(json.dumps(y.astype('float64').flatten().tolist()))
            """
        let json = try Python.run(script, [path, input, "\(shape)"])
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [Double])
    }

    // MARK: Round trips

    func testUnchangedModelsAreWrittenByteForByte() throws {
        for name in ["dtypes_raw", "dtypes_typed", "rich", "torch_script", "torch_dynamo", "external"] {
            let input = Fixtures.path(name + ".onnx")
            let onnx = try ONNXFormat.read(path: input)
            let output = folder + "/" + name + ".onnx"
            try ONNXFormat.write(onnx.model, to: output, original: onnx)
            XCTAssertEqual(try Fixtures.fileBytes(output), try Fixtures.fileBytes(input), name)
        }
        // External data files are copied beside the output under the names the model uses.
        XCTAssertEqual(
            try Fixtures.fileBytes(folder + "/external.data"),
            try Fixtures.fileBytes(Fixtures.path("external.data")))
        XCTAssertEqual(
            try Fixtures.fileBytes(folder + "/torch_dynamo.onnx.data"),
            try Fixtures.fileBytes(Fixtures.path("torch_dynamo.onnx.data")))
    }

    func testPatchingOneWeightChangesOnlyItsBytes() throws {
        let input = Fixtures.path("rich.onnx")
        var onnx = try ONNXFormat.read(path: input)
        let index = try XCTUnwrap(onnx.model.graph.initializerIndex(named: "weight"))
        let newValues: [Float] = (0..<12).map { Float($0) * 0.5 - 3 }
        onnx.model.graph.initializers[index].tensor = Tensor(shape: [4, 3], values: newValues)
        let output = folder + "/patched.onnx"
        try ONNXFormat.write(onnx.model, to: output, original: onnx)

        let before = try Fixtures.fileBytes(input)
        let after = try Fixtures.fileBytes(output)
        XCTAssertEqual(before.count, after.count)
        let differing = before.indices.filter { before[$0] != after[$0] }
        guard case .raw(let range)? = onnx.source.records[ProtoPath.mainGraph.appending(5, 0)]?.placement else {
            return XCTFail("weight should be raw_data")
        }
        XCTAssertFalse(differing.isEmpty)
        XCTAssertTrue(differing.allSatisfy { range.contains($0) }, "bytes outside the weight changed")

        let reread = try ONNXFormat.read(path: output)
        XCTAssertEqual(reread.model.graph.initializer(named: "weight")?.floatValues(), newValues)
        let reference = try referenceValues(output)
        XCTAssertEqual(reference["weight"], newValues.map(Double.init))
        XCTAssertEqual(reference["then_add"], [10, 20, 30])
    }

    func testPatchedModelRunsInONNXRuntimeWithNewValues() throws {
        var onnx = try ONNXFormat.read(path: Fixtures.path("torch_script.onnx"))
        let original = try runWithONNXRuntime(Fixtures.path("torch_script.onnx"), input: "x", shape: [2, 1, 4, 4])
        // Zero the last layer's bias: every output moves by minus that bias.
        let biasIndex = try XCTUnwrap(onnx.model.graph.initializers.firstIndex { $0.name == "fc.bias" })
        let bias = onnx.model.graph.initializers[biasIndex].tensor.floatValues()
        onnx.model.graph.initializers[biasIndex].tensor = Tensor(shape: [3], values: [Float](repeating: 0, count: 3))
        let output = folder + "/zero_bias.onnx"
        try ONNXFormat.write(onnx.model, to: output, original: onnx)
        let patched = try runWithONNXRuntime(output, input: "x", shape: [2, 1, 4, 4])
        XCTAssertEqual(patched.count, 6)
        for (i, (p, o)) in zip(patched, original).enumerated() {
            XCTAssertEqual(p, o - Double(bias[i % 3]), accuracy: 1e-5)
        }
    }

    func testPatchingTypedFieldsInPlaceAndByRebuild() throws {
        let input = Fixtures.path("dtypes_typed.onnx")
        var onnx = try ONNXFormat.read(path: input)
        let graph = onnx.model.graph
        let f32 = try XCTUnwrap(graph.initializerIndex(named: "f32_typed"))
        let i64 = try XCTUnwrap(graph.initializerIndex(named: "i64_typed"))
        onnx.model.graph.initializers[f32].tensor = Tensor(shape: [2, 3], values: [Float](repeating: 9.5, count: 6))
        // The packed float_data record keeps its length: patched in place.
        let output = folder + "/typed.onnx"
        try ONNXFormat.write(onnx.model, to: output, original: onnx)
        XCTAssertEqual(try Fixtures.fileBytes(output).count, try Fixtures.fileBytes(input).count)
        // int64 varints change length: the message is rebuilt.
        onnx.model.graph.initializers[i64].tensor = Tensor(shape: [3], values: [Int64(1), 2, 3])
        let rebuilt = folder + "/typed_rebuilt.onnx"
        try ONNXFormat.write(onnx.model, to: rebuilt, original: onnx)
        for path in [output, rebuilt] {
            let reread = try ONNXFormat.read(path: path)
            XCTAssertEqual(
                reread.model.graph.initializer(named: "f32_typed")?.floatValues(), [Float](repeating: 9.5, count: 6))
            XCTAssertEqual(reread.carriedInitializers, ["strings", "int4"])
            let reference = try referenceValues(path)
            XCTAssertEqual(reference["f32_typed"], [Double](repeating: 9.5, count: 6))
            XCTAssertEqual(reference["u16_typed"], [0, 40000, 65535])
        }
        let reread = try ONNXFormat.read(path: rebuilt)
        XCTAssertEqual(reread.model.graph.initializer(named: "i64_typed")?.int64Values(), [1, 2, 3])
        // Every other tensor still decodes to the reference bytes.
        let expected = try Fixtures.expected("dtypes_typed")
        for e in expected where e.name != "f32_typed" && e.name != "i64_typed" {
            if let tensor = reread.model.graph.initializer(named: e.name) {
                XCTAssertEqual(Fixtures.bytes(of: tensor), e.bytes, e.name)
            }
        }
    }

    func testPatchingExternalDataRewritesOnlyTheDataFile() throws {
        var onnx = try ONNXFormat.read(path: Fixtures.path("external.onnx"))
        let index = try XCTUnwrap(onnx.model.graph.initializerIndex(named: "b"))
        let values: [Float] = (0..<16).map { Float($0) }
        onnx.model.graph.initializers[index].tensor = Tensor(shape: [16], values: values)
        let output = folder + "/external.onnx"
        try ONNXFormat.write(onnx.model, to: output, original: onnx)
        XCTAssertEqual(try Fixtures.fileBytes(output), try Fixtures.fileBytes(Fixtures.path("external.onnx")))
        let before = try Fixtures.fileBytes(Fixtures.path("external.data"))
        let after = try Fixtures.fileBytes(folder + "/external.data")
        guard case .external(let slice)? = onnx.source.records[ProtoPath.mainGraph.appending(5, 1)]?.placement else {
            return XCTFail("b should be external")
        }
        XCTAssertEqual(before.count, after.count)
        XCTAssertTrue(before.indices.filter { before[$0] != after[$0] }.allSatisfy { slice.range.contains($0) })
        XCTAssertEqual(try referenceValues(output)["b"], values.map(Double.init))
        // The input's data file is untouched.
        XCTAssertEqual(
            try ONNXFormat.read(path: Fixtures.path("external.onnx")).model.graph.initializer(named: "b")?
                .floatValues(), onnx.source.model.graph.initializer(named: "b")?.floatValues())
    }

    func testWritingBesideTheInputRelocatesSharedExternalData() throws {
        // Copy the fixture into the temp folder, then write a patched sibling there.
        for name in ["external.onnx", "external.data"] {
            try FileManager.default.copyItem(atPath: Fixtures.path(name), toPath: folder + "/" + name)
        }
        var onnx = try ONNXFormat.read(path: folder + "/external.onnx")
        let index = try XCTUnwrap(onnx.model.graph.initializerIndex(named: "c"))
        onnx.model.graph.initializers[index].tensor = Tensor(shape: [6], values: [Int64](repeating: 4, count: 6))
        let sibling = folder + "/sibling.onnx"
        try ONNXFormat.write(onnx.model, to: sibling, original: onnx)
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder + "/sibling.onnx.data"))
        XCTAssertEqual(
            try Fixtures.fileBytes(folder + "/external.data"), try Fixtures.fileBytes(Fixtures.path("external.data")))
        let reference = try referenceValues(sibling)
        XCTAssertEqual(reference["c"], [4, 4, 4, 4, 4, 4])
        XCTAssertEqual(reference["small"], [1, 2])
        XCTAssertEqual(reference["a"]?.count, 128)
        // Overwriting the original in place may rewrite its own data file.
        onnx.model.graph.initializers[index].tensor = Tensor(shape: [6], values: [Int64](repeating: 5, count: 6))
        try ONNXFormat.write(onnx.model, to: folder + "/external.onnx", original: onnx)
        XCTAssertEqual(try referenceValues(folder + "/external.onnx")["c"], [5, 5, 5, 5, 5, 5])
        XCTAssertEqual(try referenceValues(sibling)["c"], [4, 4, 4, 4, 4, 4])
    }

    // MARK: Rebuilding

    func testStructuralChangesKeepEverythingElse() throws {
        let input = Fixtures.path("rich.onnx")
        var onnx = try ONNXFormat.read(path: input)
        // A dtype change, a new initializer and a changed subgraph tensor force a rebuild.
        let bias = try XCTUnwrap(onnx.model.graph.initializerIndex(named: "bias"))
        onnx.model.graph.initializers[bias].tensor = Tensor(shape: [3], values: [Double(1), 2, 3])
        onnx.model.graph.initializers[bias].tensor = try XCTUnwrap(
            onnx.model.graph.initializers[bias].tensor.convertedFloatingPoint(to: .float32))
        onnx.model.graph.initializers.append(
            Initializer(name: "extra", tensor: Tensor(shape: [2], values: [Float(7), 8])))
        onnx.model.metadata.append((key: "lethe", value: "forgot class 3"))
        let output = folder + "/rebuilt.onnx"
        try ONNXFormat.write(onnx.model, to: output, original: onnx)
        let reread = try ONNXFormat.read(path: output)
        XCTAssertEqual(reread.model.graph.initializer(named: "bias")?.floatValues(), [1, 2, 3])
        XCTAssertEqual(reread.model.graph.initializer(named: "extra")?.floatValues(), [7, 8])
        XCTAssertEqual(reread.model.metadata.map(\.key), ["author", "license", "z-order", "lethe"])
        XCTAssertEqual(reread.model.docString, "model doc")
        XCTAssertEqual(reread.model.graph.docString, "graph doc")
        XCTAssertEqual(reread.model.graph.nodes.first { $0.name == "mm" }?.docString, "a matmul")
        XCTAssertEqual(reread.model.opsets.map(\.domain), ["", "ai.onnx.ml"])
        XCTAssertEqual(reread.model.graph.valueInfos.map(\.name), ["h"])
        XCTAssertEqual(reread.model.graph.nodes.map(\.opType), onnx.model.graph.nodes.map(\.opType))
        let weight = try XCTUnwrap(reread.model.graph.initializer(named: "weight"))
        XCTAssertTrue(weight.isBitwiseEqual(to: try XCTUnwrap(onnx.model.graph.initializer(named: "weight"))))
        // Unknown fields on the model, a node and a tensor survive (3 copies of field 1001 "abc").
        let unknown: [UInt8] = [0xCA, 0x3E, 0x03] + Array("abc".utf8)
        let bytes = try Fixtures.fileBytes(output)
        XCTAssertEqual(occurrences(of: unknown, in: bytes), 3)
        let reference = try referenceValues(output)
        XCTAssertEqual(reference["extra"], [7, 8])
        XCTAssertEqual(reference["then_add"], [10, 20, 30])
        XCTAssertEqual(
            try Python.run(
                """
                import sys, onnx
                m = onnx.load(sys.argv[1])
                print(m.graph.initializer[0].doc_string, m.graph.node[5].doc_string, len(m.graph.node))
                """, [output]
            ).trimmingCharacters(in: .whitespacesAndNewlines), "the weight a matmul 9")
    }

    private func occurrences(of needle: [UInt8], in haystack: [UInt8]) -> Int {
        guard haystack.count >= needle.count else { return 0 }
        return (0...(haystack.count - needle.count)).filter { haystack[$0..<($0 + needle.count)].elementsEqual(needle) }
            .count
    }

    func testWritingWithoutOriginalBuildsAnEquivalentModel() throws {
        let input = Fixtures.path("torch_dynamo.onnx")
        let onnx = try ONNXFormat.read(path: input)
        let output = folder + "/fresh.onnx"
        try ONNXFormat.write(onnx.model, to: output, original: nil)
        XCTAssertFalse(FileManager.default.fileExists(atPath: output + ".data"))
        let expected = try runWithONNXRuntime(input, input: "x", shape: [2, 1, 4, 4])
        let actual = try runWithONNXRuntime(output, input: "x", shape: [2, 1, 4, 4])
        XCTAssertEqual(actual, expected)
        let rich = try ONNXFormat.read(path: Fixtures.path("rich.onnx"))
        try ONNXFormat.write(rich.model, to: folder + "/rich_fresh.onnx", original: nil)
        let reread = try ONNXFormat.read(path: folder + "/rich_fresh.onnx")
        XCTAssertTrue(StructuralEquality.equal(reread.model, rich.model))
        XCTAssertEqual(try referenceValues(folder + "/rich_fresh.onnx")["weight"]?.count, 12)
    }

    func testExternalDataThresholdMovesLargeInitializersOut() throws {
        let onnx = try ONNXFormat.read(path: Fixtures.path("torch_script.onnx"))
        let output = folder + "/split.onnx"
        try ONNXFormat.write(
            onnx.model, to: output, original: onnx, options: ONNXWriteOptions(externalDataThreshold: 64))
        let reread = try ONNXFormat.read(path: output)
        for initializer in onnx.model.graph.initializers {
            let tensor = try XCTUnwrap(reread.model.graph.initializer(named: initializer.name))
            XCTAssertTrue(tensor.isBitwiseEqual(to: initializer.tensor), initializer.name)
            let external = tensor.storage.mappedFile?.path.hasSuffix("split.onnx.data") ?? false
            XCTAssertEqual(external, initializer.tensor.byteCount >= 64, initializer.name)
        }
        let expected = try runWithONNXRuntime(Fixtures.path("torch_script.onnx"), input: "x", shape: [2, 1, 4, 4])
        XCTAssertEqual(try runWithONNXRuntime(output, input: "x", shape: [2, 1, 4, 4]), expected)
        // And back inline.
        try ONNXFormat.write(
            reread.model, to: folder + "/joined.onnx", original: reread,
            options: ONNXWriteOptions(externalDataThreshold: Int.max))
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/joined.onnx.data"))
        XCTAssertEqual(try runWithONNXRuntime(folder + "/joined.onnx", input: "x", shape: [2, 1, 4, 4]), expected)
    }

    /// Past protobuf's 2 GB limit every initializer of 1 KiB or more moves to external data; the
    /// limit is lowered here so the rule can be seen on a small model.
    func testModelsOverTheProtobufLimitGetExternalData() throws {
        let onnx = try ONNXFormat.read(path: Fixtures.path("torch_script.onnx"))
        var model = onnx.model
        model.graph.initializers.append(Initializer(name: "big", tensor: Tensor(zeros: .float32, shape: [1024])))
        let output = folder + "/large.onnx"
        try ProtoRebuild.write(
            model, to: output, original: onnx.source, overwritesOriginal: false,
            options: ONNXWriteOptions(), inlineLimit: 2048)
        let reread = try ONNXFormat.read(path: output)
        let big = try XCTUnwrap(reread.model.graph.initializer(named: "big"))
        XCTAssertEqual(big.storage.mappedFile?.path.hasSuffix("large.onnx.data"), true)
        XCTAssertEqual(big.floatValues(), [Float](repeating: 0, count: 1024))
        let biasFile = reread.model.graph.initializer(named: "fc.bias")?.storage.mappedFile?.path ?? ""
        XCTAssertFalse(biasFile.hasSuffix(".data"), "small initializers stay inline")
        let expected = try runWithONNXRuntime(Fixtures.path("torch_script.onnx"), input: "x", shape: [2, 1, 4, 4])
        XCTAssertEqual(try runWithONNXRuntime(output, input: "x", shape: [2, 1, 4, 4]), expected)
    }

    /// A weights-only model (no IR version, no opsets) still becomes a valid ONNX file.
    func testWeightsOnlyModelGetsDefaultVersions() throws {
        let graph = Graph(
            name: "weights", initializers: [Initializer(name: "w", tensor: Tensor(shape: [2], values: [Float(1), 2]))])
        let output = folder + "/weights.onnx"
        try ONNXFormat.write(Model(graph: graph), to: output, original: nil)
        let reread = try ONNXFormat.read(path: output)
        XCTAssertEqual(reread.model.irVersion, 10)
        XCTAssertEqual(reread.model.onnxOpset, 21)
        XCTAssertEqual(try referenceValues(output)["w"], [1, 2])
    }
}
