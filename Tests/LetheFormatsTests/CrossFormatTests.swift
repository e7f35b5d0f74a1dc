import Foundation
import XCTest
import LetheCore
import LetheIR
import LetheTestSupport
@testable import LetheFormats

final class CrossFormatTests: XCTestCase {
    static var root: String { TestEnvironment.packageRoot }

    private func temporaryFolder() throws -> String {
        let path = NSTemporaryDirectory() + "lethe-formats-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// safetensors → npz → safetensors keeps every tensor bit for bit, for every dtype NumPy has.
    func testSafetensorsThroughNPZKeepsEveryValue() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let source = Self.root + "/formats/safetensors/fixtures/model.safetensors"
        let original = try Checkpoint.open(source)
        try CheckpointConverter.convert(ConversionRequest(input: source, output: folder + "/a.npz"))
        try CheckpointConverter.convert(ConversionRequest(input: folder + "/a.npz", output: folder + "/b.safetensors"))
        let back = try Checkpoint.open(folder + "/b.safetensors")
        XCTAssertEqual(back.model.graph.initializers.map(\.name), original.model.graph.initializers.map(\.name))
        for (a, b) in zip(original.model.graph.initializers, back.model.graph.initializers) {
            XCTAssertTrue(a.tensor.isBitwiseEqual(to: b.tensor), a.name)
        }
        XCTAssertTrue(CheckpointDiff(original.model, back.model).isEqual)
    }

    /// Weights paired with a graph by name follow PyTorch's Identity aliases, and a value that
    /// disagrees with its alias is refused.
    func testTemplatePairingFollowsIdentityAliases() throws {
        let weight = Tensor(shape: [2], values: [Float(1), 2])
        let graph = Graph(
            nodes: [
                Node(name: "alias", opType: "Identity", inputs: ["a.weight"], outputs: ["b.weight"]),
                Node(name: "use", opType: "Add", inputs: ["x", "b.weight"], outputs: ["y"])
            ], inputs: [ValueInfo(name: "x")], outputs: [ValueInfo(name: "y")],
            initializers: [
                Initializer(name: "a.weight", tensor: weight),
                Initializer(name: "shape", tensor: Tensor(shape: [1], values: [Int64(2)]))
            ])
        let template = GraphTemplate(model: Model(graph: graph))
        XCTAssertEqual(template.weightNames(forInitializer: "a.weight"), ["a.weight", "b.weight"])
        let new = Tensor(shape: [2], values: [Float(5), 6])
        let filled = try template.filled(with: [
            Initializer(name: "b.weight", tensor: new), Initializer(name: "a.weight", tensor: new)
        ])
        XCTAssertEqual(filled.graph.initializer(named: "a.weight")?.floatValues(), [5, 6])
        XCTAssertEqual(
            filled.graph.initializer(named: "shape")?.int64Values(), [2], "integer initializers stay the graph's")
        XCTAssertThrowsError(
            try template.filled(with: [
                Initializer(name: "a.weight", tensor: new), Initializer(name: "b.weight", tensor: weight)
            ])
        ) {
            XCTAssertTrue("\($0)".contains("alias"), "\($0)")
        }
        XCTAssertThrowsError(try template.filled(with: [Initializer(name: "c.weight", tensor: new)])) {
            XCTAssertTrue(
                "\($0)".contains("missing from the weights: a.weight")
                    && "\($0)".contains("not in the graph: c.weight"), "\($0)")
        }
        XCTAssertThrowsError(
            try template.filled(with: [
                Initializer(name: "a.weight", tensor: Tensor(shape: [3], values: [Float(1), 2, 3]))
            ]))
    }

    func testSampleFilePreprocessesUInt8PerChannel() throws {
        let x = Tensor(shape: [1, 2, 1, 2], values: [UInt8(0), 255, 51, 102])
        let prepared = try SampleFile.prepare(
            x, for: .float32, preprocessing: ImagePreprocessing(scale: 1 / 255, mean: [0, 0.5], std: [1, 0.5]))
        let values = prepared.floatValues()
        XCTAssertEqual(values[0], 0, accuracy: 1e-6)
        XCTAssertEqual(values[1], 1, accuracy: 1e-6)
        XCTAssertEqual(values[2], (0.2 - 0.5) / 0.5, accuracy: 1e-6)
        XCTAssertEqual(values[3], (0.4 - 0.5) / 0.5, accuracy: 1e-6)
        XCTAssertThrowsError(
            try SampleFile.prepare(x, for: .float32, preprocessing: ImagePreprocessing(mean: [0, 0, 0])))
    }
}
