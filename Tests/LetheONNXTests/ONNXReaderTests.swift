import Foundation
import XCTest
import LetheCore
import LetheIR
@testable import LetheONNX

final class ONNXReaderTests: XCTestCase {
    /// Every tensor of the fixture decodes to the bytes the reference library decodes.
    private func assertMatchesReference(
        _ model: String, in folder: String = Fixtures.folder,
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let onnx = try ONNXFormat.read(path: folder + "/" + model + ".onnx")
        let expected = try Fixtures.expected(model, in: folder)
        let actual = Fixtures.tensors(of: onnx.model.graph)
        XCTAssertEqual(actual.count, expected.count, "tensor count of \(model)", file: file, line: line)
        for (a, e) in zip(actual, expected) {
            if e.nodeOutput == nil { XCTAssertEqual(a.name, e.name, file: file, line: line) }
            XCTAssertEqual(a.nodeOutput, e.nodeOutput, file: file, line: line)
            XCTAssertEqual(ONNXDataType.code(for: a.tensor.dtype), e.type, "dtype of \(e.name)", file: file, line: line)
            XCTAssertEqual(a.tensor.shape, e.dims, "shape of \(e.name)", file: file, line: line)
            XCTAssertEqual(Fixtures.bytes(of: a.tensor), e.bytes, "values of \(e.name)", file: file, line: line)
        }
    }

    func testEveryDTypeInRawData() throws {
        try assertMatchesReference("dtypes_raw")
        let onnx = try ONNXFormat.read(path: Fixtures.path("dtypes_raw.onnx"))
        XCTAssertEqual(onnx.carriedInitializers, ["strings", "int4"])
        let f32 = try XCTUnwrap(onnx.model.graph.initializer(named: "f32_raw"))
        XCTAssertEqual(f32.floatValues(), [1.5, -2.25, 3.0, 0.0, -0.0, 1e-30])
        // raw_data tensors point into the mapped file instead of copying it (byte-aligned kinds always can).
        XCTAssertNotNil(onnx.model.graph.initializer(named: "u8_raw")?.storage.mappedFile)
        let scalar = try XCTUnwrap(onnx.model.graph.initializer(named: "scalar_f32"))
        XCTAssertEqual(scalar.shape, [])
        XCTAssertEqual(scalar.floatValues(), [2.5])
        XCTAssertEqual(onnx.model.graph.initializer(named: "empty_f32")?.shape, [0, 3])
    }

    func testEveryDTypeInTypedFields() throws {
        try assertMatchesReference("dtypes_typed")
        let onnx = try ONNXFormat.read(path: Fixtures.path("dtypes_typed.onnx"))
        XCTAssertEqual(onnx.model.graph.initializer(named: "i8_typed")?.int64Values(), [-128, -1, 0, 127])
        XCTAssertEqual(
            onnx.model.graph.initializer(named: "scalar_i64_typed")?.int64Values()
                ?? onnx.model.graph
                .initializer(named: "scalar_i64")?.int64Values(), [-7])
    }

    func testConstantsSubgraphsMetadataAndDocStrings() throws {
        try assertMatchesReference("rich")
        let model = try ONNXFormat.read(path: Fixtures.path("rich.onnx")).model
        XCTAssertEqual(model.irVersion, 8)
        XCTAssertEqual(model.producerName, "lethe-fixtures")
        XCTAssertEqual(model.producerVersion, "1.0")
        XCTAssertEqual(model.docString, "model doc")
        XCTAssertEqual(model.opsets.map(\.domain), ["", "ai.onnx.ml"])
        XCTAssertEqual(model.opsets.map(\.version), [17, 3])
        XCTAssertEqual(model.metadata.map(\.key), ["author", "license", "z-order"])
        XCTAssertEqual(model.metadata.map(\.value), ["lethe", "MIT", "kept"])
        let graph = model.graph
        XCTAssertEqual(graph.docString, "graph doc")
        XCTAssertEqual(graph.inputs.first?.name, "x")
        XCTAssertEqual(graph.inputs.first?.dtype, .float32)
        XCTAssertEqual(graph.inputs.first?.shape, [.symbolic("batch"), .fixed(4)])
        XCTAssertEqual(graph.valueInfos.map(\.name), ["h"])
        XCTAssertEqual(graph.outputs.count, 6)
        let mm = try XCTUnwrap(graph.nodes.first { $0.name == "mm" })
        XCTAssertEqual(mm.docString, "a matmul")
        XCTAssertEqual(
            graph.nodes.map(\.opType),
            ["Constant", "Constant", "Constant", "Constant", "Constant", "MatMul", "Add", "Constant", "If"])
        XCTAssertEqual(graph.nodes[1].attribute("value_float")?.floatValue, 0.25)
        XCTAssertEqual(graph.nodes[2].attribute("value_floats")?.floatsValue, [1.0, 2.0])
        XCTAssertEqual(graph.nodes[3].attribute("value_int")?.intValue, 3)
        XCTAssertEqual(graph.nodes[4].attribute("value_ints")?.intsValue, [4, 5, 6])
        XCTAssertEqual(graph.nodes[0].attribute("value")?.tensorValue?.int64Values(), [1, 2, 3, 4])
        let ifNode = graph.nodes[8]
        let thenBranch = try XCTUnwrap(ifNode.attribute("then_branch")?.graphValue)
        XCTAssertEqual(thenBranch.initializer(named: "then_add")?.floatValues(), [10, 20, 30])
        let elseBranch = try XCTUnwrap(ifNode.attribute("else_branch")?.graphValue)
        XCTAssertEqual(elseBranch.nodes.first?.attribute("value")?.tensorValue?.floatValues(), [-1, -2, -3])
    }

    func testExternalDataIsMappedAtItsOffsets() throws {
        try assertMatchesReference("external")
        let onnx = try ONNXFormat.read(path: Fixtures.path("external.onnx"))
        let a = try XCTUnwrap(onnx.model.graph.initializer(named: "a"))
        XCTAssertEqual(a.shape, [8, 16])
        XCTAssertEqual(a.storage.mappedFile?.path.hasSuffix("external.data"), true)
        XCTAssertEqual(onnx.model.graph.initializer(named: "c")?.int64Values(), [0, 1, 2, 3, 4, 5])
    }

    func testTorchExports() throws {
        try assertMatchesReference("torch_script")
        try assertMatchesReference("torch_dynamo")
        let dynamo = try ONNXFormat.read(path: Fixtures.path("torch_dynamo.onnx")).model
        XCTAssertEqual(dynamo.graph.nodes.map(\.opType), ["Conv", "Relu", "Reshape", "Gemm"])
        XCTAssertEqual(dynamo.graph.inputs.first?.shape, [.fixed(2), .fixed(1), .fixed(4), .fixed(4)])
    }

    func testReadFromMemoryCopiesAndResolvesExternalData() throws {
        let bytes = try Fixtures.fileBytes(Fixtures.path("external.onnx"))
        let onnx = try bytes.withUnsafeBytes {
            try ONNXFormat.read(bytes: $0, path: "external.onnx", baseFolder: Fixtures.folder)
        }
        XCTAssertEqual(onnx.model.graph.initializer(named: "small")?.floatValues(), [1.0, 2.0])
        XCTAssertThrowsError(
            try bytes.withUnsafeBytes {
                try ONNXFormat.read(bytes: $0, path: "external.onnx", baseFolder: nil)
            })
    }

    /// The installed reference libraries (onnx, PyTorch's two exporters) make fresh fixtures;
    /// each reads as the reference decodes it and writes back byte for byte.
    func testFreshlyGeneratedFixtures() throws {
        let python = try Python.interpreter()
        let folder = try Fixtures.makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        // PyTorch is optional for this check: without it only the onnx-made fixtures are compared.
        let hasTorch = try Python.run("import importlib.util; print(importlib.util.find_spec('torch') is not None)")
            .contains("True")
        process.arguments =
            [Fixtures.packageRoot + "/formats/onnx/make_fixtures.py", folder] + (hasTorch ? [] : ["--no-torch"])
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "make_fixtures.py failed")
        let outputs = folder + "/out"
        try FileManager.default.createDirectory(atPath: outputs, withIntermediateDirectories: true)
        for name in ["dtypes_raw", "dtypes_typed", "rich", "external"]
            + (hasTorch ? ["torch_script", "torch_dynamo"] : [])
        {
            try assertMatchesReference(name, in: folder)
            let onnx = try ONNXFormat.read(path: folder + "/" + name + ".onnx")
            try ONNXFormat.write(onnx.model, to: outputs + "/" + name + ".onnx", original: onnx)
            XCTAssertEqual(
                try Fixtures.fileBytes(outputs + "/" + name + ".onnx"),
                try Fixtures.fileBytes(folder + "/" + name + ".onnx"), name)
        }
    }

    /// Standalone `TensorProto` files (as in ONNX test data sets) decode like graph tensors.
    func testStandaloneTensorProtos() throws {
        let folder = try Fixtures.makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try Python.run(
            """
            import sys, onnx
            for kind in ("raw", "typed"):
                m = onnx.load(sys.argv[1] + "/dtypes_" + kind + ".onnx")
                for t in m.graph.initializer:
                    with open(sys.argv[2] + "/" + t.name + ".pb", "wb") as f:
                        f.write(t.SerializeToString())
            """, [Fixtures.folder, folder])
        var checked = 0
        for kind in ["raw", "typed"] {
            for e in try Fixtures.expected("dtypes_" + kind) {
                let bytes = try Fixtures.fileBytes(folder + "/" + e.name + ".pb")
                let (name, tensor) = try bytes.withUnsafeBytes { try ONNXFormat.readTensor(bytes: $0) }
                XCTAssertEqual(name, e.name)
                XCTAssertEqual(tensor.shape, e.dims, e.name)
                XCTAssertEqual(Fixtures.bytes(of: tensor), e.bytes, e.name)
                checked += 1
            }
            let strings = try Fixtures.fileBytes(folder + "/strings.pb")
            XCTAssertThrowsError(try strings.withUnsafeBytes { try ONNXFormat.readTensor(bytes: $0) })
        }
        XCTAssertEqual(checked, 44)
    }
}
