import LetheCore
import LetheIR
import LetheONNX
import XCTest
@testable import LetheUnlearn

final class LayerDiscoveryTests: XCTestCase {
    private func model(_ relative: String) throws -> Model {
        try ONNXFormat.read(path: TestSupport.packageRoot.appendingPathComponent(relative).path).model
    }

    func testSampleCNNLayers() throws {
        let found = LayerDiscovery.discover(in: try model("samples/fashion_cnn.onnx"))
        XCTAssertEqual(found.layers.map(\.name), ["conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight"])
        let conv2 = found.layers[1]
        XCTAssertEqual(conv2.inputDimension, 144)
        XCTAssertEqual(conv2.outputDimension, 32)
        XCTAssertEqual(conv2.orientation, .outputByInput)
        guard case .convolution(let geometry) = conv2.uses[0].rows else { return XCTFail("conv2 is not a convolution") }
        XCTAssertEqual(geometry.pads, [1, 1, 1, 1])
        XCTAssertEqual(geometry.kernel, [3, 3])
        let fc1 = found.layers[2]
        XCTAssertEqual(fc1.orientation, .outputByInput) // Gemm transB = 1
        XCTAssertEqual(fc1.inputDimension, 1568)
        XCTAssertEqual(fc1.uses[0].opType, "Gemm")
    }

    /// TorchScript ViT: Linear on tokens is MatMul(x, Transpose(W)) with W stored O × d.
    func testTransposedMatMulWeightsOfTheViT() throws {
        let found = LayerDiscovery.discover(in: try model("formats/models/vit_ts.onnx"))
        let byName = Dictionary(uniqueKeysWithValues: found.layers.map { ($0.name, $0) })
        XCTAssertEqual(found.layers.count, 14)
        let q = try XCTUnwrap(byName["blocks.0.attn.q.weight"])
        XCTAssertEqual(q.orientation, .outputByInput)
        XCTAssertEqual(q.uses.first?.opType, "MatMul")
        let fc1 = try XCTUnwrap(byName["blocks.0.fc1.weight"])
        XCTAssertEqual(fc1.inputDimension, fc1.shape[1])
        XCTAssertEqual(byName["head.weight"]?.uses.first?.opType, "Gemm")
        XCTAssertEqual(byName["patch_embed.weight"]?.inputDimension, 48)
    }

    /// Dynamo ViT: the weights are stored pre-transposed (d × O) under generated names.
    func testPretransposedWeightsOfTheDynamoViT() throws {
        let found = LayerDiscovery.discover(in: try model("formats/models/vit_dynamo.onnx"))
        XCTAssertEqual(found.layers.count, 14)
        let q = try XCTUnwrap(found.layers.first { $0.name == "val_13" })
        XCTAssertEqual(q.orientation, .inputByOutput)
        XCTAssertEqual(q.inputDimension, q.shape[0])
    }

    func testConstantsIdentityChainsSharedWeightsAndFilter() throws {
        let w = Tensor(shape: [3, 4], values: [Float](repeating: 1, count: 12))
        let k = Tensor(shape: [2, 4, 3, 3], values: [Float](repeating: 1, count: 72))
        let graph = Graph(
            nodes: [
                Node(name: "id", opType: "Identity", inputs: ["w"], outputs: ["w_alias"]),
                Node(name: "mm1", opType: "MatMul", inputs: ["x", "w_alias"], outputs: ["y1"]),
                Node(name: "mm2", opType: "MatMul", inputs: ["x2", "w"], outputs: ["y2"]),
                Node(
                    name: "const", opType: "Constant", inputs: [], outputs: ["c"], attributes: [("value", .tensor(w))]),
                Node(
                    name: "t", opType: "Transpose", inputs: ["c"], outputs: ["ct"],
                    attributes: [("perm", .ints([1, 0]))]),
                Node(
                    name: "gemm", opType: "Gemm", inputs: ["y1", "ct"], outputs: ["y3"],
                    attributes: [("transB", .int(1))]),
                Node(
                    name: "conv", opType: "Conv", inputs: ["img", "k"], outputs: ["y4"],
                    attributes: [("group", .int(2)), ("auto_pad", .string(Array("SAME_UPPER".utf8)))]),
                Node(name: "dyn", opType: "MatMul", inputs: ["x", "y1"], outputs: ["y5"])
            ], initializers: [Initializer(name: "w", tensor: w), Initializer(name: "k", tensor: k)])
        let found = LayerDiscovery.discover(in: Model(graph: graph))
        XCTAssertEqual(found.layers.map(\.name), ["w", "c", "k"])
        let shared = found.layers[0]
        XCTAssertEqual(shared.nodeNames, ["mm1", "mm2"])
        XCTAssertEqual(shared.orientation, .inputByOutput)
        XCTAssertEqual(shared.inputDimension, 3)
        let constant = found.layers[1]
        XCTAssertEqual(constant.source, .constantNode(index: 3, output: "c"))
        // transB = 1 and a Transpose cancel: the stored tensor is d × O.
        XCTAssertEqual(constant.orientation, .inputByOutput)
        let conv = found.layers[2]
        XCTAssertEqual(conv.groups, 2)
        XCTAssertEqual(conv.inputDimension, 36)

        let filtered = LayerDiscovery.discover(in: Model(graph: graph), filter: LayerFilter("k, mm*"))
        XCTAssertEqual(filtered.layers.map(\.name), ["w", "k"])
        XCTAssertTrue(LayerFilter.match("blocks.*.fc?.weight", "blocks.1.fc2.weight"))
        XCTAssertFalse(LayerFilter.match("blocks.*.fc?.weight", "blocks.1.attn.q.weight"))

        // A weight tied to an embedding (Gather) is not a layer: patching would change the embedding.
        let tied = Graph(
            nodes: [
                Node(name: "embed", opType: "Gather", inputs: ["w", "ids"], outputs: ["tokens"]),
                Node(name: "t", opType: "Transpose", inputs: ["w"], outputs: ["wt"]),
                Node(name: "head", opType: "MatMul", inputs: ["h", "wt"], outputs: ["logits"])
            ], initializers: [Initializer(name: "w", tensor: w)])
        let tiedFound = LayerDiscovery.discover(in: Model(graph: tied))
        XCTAssertTrue(tiedFound.layers.isEmpty)
        XCTAssertEqual(tiedFound.skipped.first?.node, "head")
        XCTAssertTrue(tiedFound.skipped.first?.reason.contains("Gather node embed") ?? false)

        // Patches are written back to initializers and Constant nodes alike.
        let patched = Model(graph: graph).replacingWeights([
            "c": Tensor(shape: [3, 4], values: [Float](repeating: 2, count: 12)),
            "k": Tensor(zeros: .float32, shape: [2, 4, 3, 3])
        ])
        XCTAssertEqual(patched.graph.nodes[3].attribute("value")?.tensorValue?.floatValues().first, 2)
        XCTAssertEqual(patched.graph.initializer(named: "k")?.floatValues().first, 0)
        XCTAssertEqual(patched.graph.initializer(named: "w")?.floatValues().first, 1)
    }
}

/// Weights Lethe finds but does not project are listed with the reason, never dropped silently.
final class SkippedLayerTests: XCTestCase {
    func testWeightsBehindCastOrOnTheLeftAreListed() {
        let w = Tensor(shape: [4, 3], values: [Float](repeating: 1, count: 12))
        let graph = Graph(
            nodes: [
                Node(name: "cast", opType: "Cast", inputs: ["w"], outputs: ["w32"], attributes: [("to", .int(1))]),
                Node(name: "mm_cast", opType: "MatMul", inputs: ["x", "w32"], outputs: ["y1"]),
                Node(name: "mm_left", opType: "MatMul", inputs: ["w", "x2"], outputs: ["y2"]),
                Node(name: "mm_data", opType: "MatMul", inputs: ["y1", "y2"], outputs: ["y3"])
            ], inputs: [ValueInfo(name: "x", dtype: .float32), ValueInfo(name: "x2", dtype: .float32)],
            outputs: [ValueInfo(name: "y3", dtype: .float32)], initializers: [Initializer(name: "w", tensor: w)])
        let found = LayerDiscovery.discover(in: Model(graph: graph))
        XCTAssertTrue(found.layers.isEmpty)
        let reasons = Dictionary(uniqueKeysWithValues: found.skipped.map { ($0.node, $0.reason) })
        XCTAssertEqual(
            reasons["mm_cast"], "weight w reaches the node through Cast (only Identity and 2-D Transpose are followed)")
        XCTAssertEqual(
            reasons["mm_left"],
            "the constant w is the left operand (input 0); only a constant right operand is projected")
        XCTAssertNil(reasons["mm_data"], "a product of two activations is no weight layer")
    }
}
