import Foundation
import XCTest
import LetheCore
import LetheIR
import LetheNumPy
import LetheONNX
import LetheSafetensors
@testable import LetheFormats

/// Bare `.npy` files and `.npz` files with string members as checkpoints (`inspect`, `convert`),
/// on SciPy's files in `formats/npz/fixtures/scipy`.
final class NumPyCheckpointTests: XCTestCase {
    static let corpus = CrossFormatTests.root + "/formats/npz/fixtures/scipy"
    static let arrays = [
        "jf_skew_t_gamlss_pdf_data.npy", "estimate_gradients_hang.npy",
        "rel_breitwigner_pdf_sample_data_ROOT.npy"
    ]
    static let archives = ["csc_py2.npz", "csc_py3.npz", "fftpack_test.npz"]

    private func temporaryFolder() throws -> String {
        let path = NSTemporaryDirectory() + "lethe-numpy-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    private func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    private func assertSameTensors(
        _ a: Model, _ b: Model, _ what: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertEqual(a.graph.initializers.map(\.name), b.graph.initializers.map(\.name), what, file: file, line: line)
        for (x, y) in zip(a.graph.initializers, b.graph.initializers) {
            XCTAssertTrue(x.tensor.isBitwiseEqual(to: y.tensor), "\(what): \(x.name)", file: file, line: line)
        }
    }

    func testBareNPYIsACheckpointOfOneTensorNamedAfterTheFile() throws {
        let path = Self.corpus + "/jf_skew_t_gamlss_pdf_data.npy"
        XCTAssertEqual(try CheckpointFormat.detect(path: path), .npy)
        let checkpoint = try Checkpoint.open(path)
        XCTAssertEqual(checkpoint.format, .npy)
        XCTAssertEqual(checkpoint.model.graph.initializers.map(\.name), ["jf_skew_t_gamlss_pdf_data"])
        let tensor = checkpoint.model.graph.initializers[0].tensor
        XCTAssertEqual(tensor.dtype, .float64)
        XCTAssertEqual(tensor.shape, [4, 123])
        let text = ModelSummary(checkpoint).render()
        XCTAssertTrue(text.contains("format    npy"), text)
        XCTAssertTrue(text.contains("jf_skew_t_gamlss_pdf_data  f64    [4, 123]  3.9 kB"), text)
        XCTAssertEqual(NPYFile.arrayName(forPath: "a/b/fc.bias.NPY"), "fc.bias")
        XCTAssertEqual(NPYFile.arrayName(forPath: "/tmp/.npy"), "array")
    }

    /// Every corpus file rewrites to itself through `convert`, and crosses to the other formats and
    /// back with every value kept.
    func testEveryCorpusFileConvertsAndRoundTrips() throws {
        let folder = try temporaryFolder()
        for name in Self.arrays + Self.archives {
            let source = Self.corpus + "/" + name
            let original = try Checkpoint.open(source)
            let same = "\(folder)/same-\(name)"
            try CheckpointConverter.convert(ConversionRequest(input: source, output: same))
            XCTAssertEqual(try bytes(same), try bytes(source), "\(name) rewritten")
            let viaNPZ = "\(folder)/\(name).npz"
            try CheckpointConverter.convert(ConversionRequest(input: source, output: viaNPZ))
            assertSameTensors(try Checkpoint.open(viaNPZ).model, original.model, "\(name) → npz")
            guard name.hasSuffix(".npy") else { continue }
            // One tensor: through safetensors and back to .npy, named after the file on the way.
            let viaSafetensors = "\(folder)/\(name).safetensors", back = "\(folder)/back-\(name)"
            try CheckpointConverter.convert(ConversionRequest(input: source, output: viaSafetensors))
            try CheckpointConverter.convert(ConversionRequest(input: viaSafetensors, output: back))
            assertSameTensors(try Checkpoint.open(viaSafetensors).model, original.model, "\(name) → safetensors")
            XCTAssertTrue(
                try Checkpoint.open(back).model.graph.initializers[0].tensor
                    .isBitwiseEqual(to: original.model.graph.initializers[0].tensor), "\(name) back to npy")
        }
        // np.save wrote the C-order ones, so a fresh .npy of the same array is the same file.
        let npz = "\(folder)/jf_skew_t_gamlss_pdf_data.npy.npz", fresh = "\(folder)/jf_skew_t_gamlss_pdf_data.npy"
        try CheckpointConverter.convert(ConversionRequest(input: npz, output: fresh))
        XCTAssertEqual(try bytes(fresh), try bytes(Self.corpus + "/jf_skew_t_gamlss_pdf_data.npy"))
    }

    func testStringMembersAreShownAndKeptThroughDTypeConversion() throws {
        let folder = try temporaryFolder()
        let source = Self.corpus + "/fftpack_test.npz"
        let summary = ModelSummary(try Checkpoint.open(source))
        let header = try XCTUnwrap(summary.tensors.first { $0.name == "__header__" })
        XCTAssertEqual(header.dtype, "S75")
        XCTAssertEqual(header.shape, [])
        XCTAssertEqual(header.bytes, 75)
        XCTAssertTrue(summary.render().contains("__header__   S75    []  75 B"), summary.render())
        let unicode = try XCTUnwrap(
            ModelSummary(try Checkpoint.open(Self.corpus + "/csc_py3.npz")).tensors.first { $0.name == "format" })
        XCTAssertEqual(unicode.dtype, "U3")
        // --dtype f16 converts the numbers and leaves the strings byte for byte.
        let out = "\(folder)/f16.npz"
        try CheckpointConverter.convert(ConversionRequest(input: source, output: out, dtype: .float16))
        let converted = try Checkpoint.open(out).model.graph, original = try Checkpoint.open(source).model.graph
        XCTAssertEqual(converted.initializer(named: "x0")?.dtype, .float16)
        for name in ["__header__", "__version__"] {
            XCTAssertTrue(
                try XCTUnwrap(converted.initializer(named: name))
                    .isBitwiseEqual(to: try XCTUnwrap(original.initializer(named: name))), name)
        }
    }

    func testStringMembersAreRefusedByFormatsOfNumbers() throws {
        let folder = try temporaryFolder()
        let source = Self.corpus + "/csc_py3.npz"
        for (output, graph) in [("\(folder)/out.safetensors", nil), ("\(folder)/out.onnx", "\(folder)/graph.onnx")] {
            XCTAssertThrowsError(
                try CheckpointConverter.convert(
                    ConversionRequest(
                        input: source, output: output,
                        graphTemplate: graph))
            ) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains("'format' is a NumPy string array (U3)"), text)
                XCTAssertTrue(text.contains("holds only numbers"), text)
                XCTAssertFalse(text.contains("\n"), text)
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: output), output)
        }
        // The numbers in the same archive still convert once the string member is left out.
        XCTAssertThrowsError(
            try CheckpointConverter.convert(ConversionRequest(input: source, output: "\(folder)/one.npy"))
        ) {
            XCTAssertTrue("\($0)".contains("an .npy file holds one array, the model has 5 tensors"), "\($0)")
        }
    }

    /// The writers refuse string tensors themselves, whoever calls them.
    func testWritersOfNumbersRefuseStringTensors() throws {
        let folder = try temporaryFolder()
        let label = Array("cat\0dog\0".utf8).map { UInt32($0) }.withUnsafeBytes {
            Tensor(dtype: .unicode, shape: [2, 4], copying: $0)
        }
        let weights = Model(graph: Graph(initializers: [Initializer(name: "label", tensor: label)]))
        XCTAssertThrowsError(try SafetensorsFormat.write(weights, to: "\(folder)/w.safetensors")) {
            XCTAssertTrue(
                "\($0)".contains("tensor \"label\" is a NumPy string array (U4), which safetensors has no dtype for"),
                "\($0)")
        }
        var graph = weights.graph
        graph.nodes = [Node(name: "id", opType: "Identity", inputs: ["label"], outputs: ["y"])]
        graph.outputs = [ValueInfo(name: "y")]
        XCTAssertThrowsError(try ONNXFormat.write(Model(graph: graph), to: "\(folder)/w.onnx", original: nil)) {
            XCTAssertTrue(
                "\($0)".contains("tensor \"label\" is a NumPy string array (U4); ONNX weights are numbers"), "\($0)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), [])
    }

    func testComputationsRefuseStrings() throws {
        let folder = try temporaryFolder()
        let path = "\(folder)/data.npz"
        let x = Array("abcdef".utf8).withUnsafeBytes { Tensor(dtype: .bytes, shape: [2, 3], copying: $0) }
        try CheckpointWriter.write(
            Model(
                graph: Graph(initializers: [
                    Initializer(name: "x", tensor: x),
                    Initializer(name: "y", tensor: Tensor(shape: [2], values: [Int64(0), 1]))
                ])), as: .npz, to: path)
        XCTAssertThrowsError(try SampleFile.load(path)) { XCTAssertTrue("\($0)".contains("'x' is bytes"), "\($0)") }
        XCTAssertFalse(DType.bytes.isNumeric)
        XCTAssertFalse(DType.unicode.isFloatingPoint)
        XCTAssertEqual(Graph(initializers: [Initializer(name: "x", tensor: x)]).parameterCount, 0)
    }

    /// Weights in an `.npz` beside a string member run with a graph, and patching them leaves the
    /// string member's bytes where they were.
    func testStringMembersRideAlongWhenWeightsArePatched() throws {
        let folder = try temporaryFolder()
        let weight = Tensor(shape: [2], values: [Float(1), 2])
        let template = Graph(
            nodes: [Node(name: "add", opType: "Add", inputs: ["x", "w"], outputs: ["y"])],
            inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(2)])],
            outputs: [ValueInfo(name: "y")], initializers: [Initializer(name: "w", tensor: weight)])
        try ONNXFormat.write(
            Model(graph: template, irVersion: 8, opsets: [(domain: "", version: 17)]), to: "\(folder)/graph.onnx",
            original: nil)
        let note = Array("lethe".utf8).withUnsafeBytes { Tensor(dtype: .bytes, shape: [5], copying: $0) }
        try CheckpointWriter.write(
            Model(
                graph: Graph(initializers: [
                    Initializer(name: "note", tensor: note), Initializer(name: "w", tensor: weight)
                ])), as: .npz, to: "\(folder)/weights.npz")
        let runnable = try RunnableCheckpoint.open("\(folder)/weights.npz", graph: "\(folder)/graph.onnx")
        XCTAssertEqual(runnable.model.graph.initializers.map(\.name), ["w"])
        try runnable.writePatched(["w": Tensor(shape: [2], values: [Float(3), 4])], to: "\(folder)/patched.npz")
        let patched = try Checkpoint.open("\(folder)/patched.npz").model.graph
        XCTAssertEqual(patched.initializer(named: "w")?.floatValues(), [3, 4])
        XCTAssertTrue(try XCTUnwrap(patched.initializer(named: "note")).isBitwiseEqual(to: note))
        let before = try bytes("\(folder)/weights.npz"), after = try bytes("\(folder)/patched.npz")
        XCTAssertEqual(before.count, after.count)
        XCTAssertLessThanOrEqual(zip(before, after).filter { $0 != $1 }.count, 8 + 8, "only w's bytes and CRCs change")
        // A string member the graph names as a weight is refused, not skipped.
        try CheckpointWriter.write(
            Model(
                graph: Graph(initializers: [
                    Initializer(
                        name: "w",
                        tensor: Array("ab".utf8).withUnsafeBytes { Tensor(dtype: .bytes, shape: [2], copying: $0) })
                ])), as: .npz, to: "\(folder)/strings.npz")
        XCTAssertThrowsError(try RunnableCheckpoint.open("\(folder)/strings.npz", graph: "\(folder)/graph.onnx")) {
            XCTAssertTrue("\($0)".contains("'w' is bytes, the graph expects float32"), "\($0)")
        }
    }

    func testPickledMembersAreRefusedWithTheirReason() throws {
        XCTAssertThrowsError(try Checkpoint.open(Self.corpus + "/propack_test_data.npz")) { error in
            XCTAssertTrue(
                "\(error)".contains("holds pickled Python objects; Lethe refuses to load pickles"), "\(error)")
        }
        // A bare pickled .npy is a .npy checkpoint that is refused for its pickle, not an unknown format.
        let bare = CrossFormatTests.root + "/formats/npz/fixtures/pickled.npy"
        XCTAssertEqual(try CheckpointFormat.detect(path: bare), .npy)
        XCTAssertThrowsError(try Checkpoint.open(bare)) { error in
            XCTAssertTrue(
                "\(error)".hasSuffix(
                    "pickled: object array (descr 'O') holds pickled Python objects; Lethe refuses to load pickles"),
                "\(error)")
        }
    }
}
