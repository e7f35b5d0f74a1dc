import Foundation
import LetheCore
import LetheIR
import LetheNumPy
import LetheONNX
import XCTest
@testable import LetheUnlearn

/// The Swift pipeline (interpreter taps in float32, syrk Grams, dsyevd, factored projection) against the
/// independent float64 PyTorch/NumPy reference in formats/models/unlearn/ (Tests/reference/unlearn_reference.py).
final class ReferenceFixtureTests: XCTestCase {
    private func path(_ relative: String) -> String { TestSupport.packageRoot.appendingPathComponent(relative).path }

    private func arrays(_ relative: String) throws -> [String: Tensor] {
        Dictionary(
            try NPZFormat.readArrays(path: path(relative)).map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a }
        )
    }

    /// An npz of `x`, `y` as samples; uint8 images become float32 / 255 as the sample model expects.
    private func samples(_ relative: String) throws -> SampleSet {
        let data = try arrays(relative)
        var x = try XCTUnwrap(data["x"])
        if x.dtype == .uint8 { x = Tensor(shape: x.shape, values: x.floatValues().map { $0 / 255 }) }
        let y = try XCTUnwrap(data["y"]).int64Values().map { Int($0) }
        return SampleSet(inputs: x, labels: y)
    }

    /// Collects statistics on `model` over the fixture's retain/forget inputs and patches at α = 100, 3.
    private func patched(
        model relative: String, fixture: String
    ) throws -> (weights: [String: Tensor], stats: StatisticsSet, model: Model) {
        let model = try ONNXFormat.read(path: path(relative)).model
        let layers = LayerDiscovery.discover(in: model).layers
        let collector = StatisticsCollector(layers: layers, positionCap: nil, seed: 0, batchSize: 64)
        let executor = try RuntimeExecutor(model: model, threads: nil)
        let stats = try collector.collect(
            executor: executor, retain: samples("formats/models/unlearn/\(fixture).retain.npz"),
            forget: samples("formats/models/unlearn/\(fixture).forget.npz"))
        let plan = try ProjectionPlan(model: model, layers: layers, statistics: stats)
        return (try plan.patchedWeights(alphaRetain: 100, alphaForget: 3), stats, model)
    }

    private func assertClose(
        _ got: Tensor, _ expected: Tensor, _ name: String, relative: Double = 1e-4, file: StaticString = #filePath,
        line: UInt = #line
    ) {
        XCTAssertEqual(got.shape, expected.shape, name, file: file, line: line)
        XCTAssertEqual(got.dtype, expected.dtype, name, file: file, line: line)
        let a = got.doubleValues(), b = expected.doubleValues()
        guard a.count == b.count else { return }
        let scale = b.reduce(0) { max($0, abs($1)) }
        let error = TestSupport.maxAbsDifference(a, b)
        XCTAssertLessThanOrEqual(
            error, relative * scale, "\(name): max |Δ| \(error) vs max |w| \(scale)", file: file, line: line)
    }

    /// A row budget caps each pass's positions per image at ⌈budget ÷ images⌉: the retain and forget
    /// passes bring the same rows per convolution however many images each has, dense layers keep one
    /// row per image, and the retain statistics are those of that cap set by hand.
    func testRowBudgetCapsPositionsPerPass() throws {
        let model = try ONNXFormat.read(path: path("samples/fashion_cnn.onnx")).model
        let layers = LayerDiscovery.discover(in: model).layers
        let retain = try samples("formats/models/unlearn/fashion_cnn.retain.npz")
        let forget = try samples("formats/models/unlearn/fashion_cnn.forget.npz")
        XCTAssertEqual([retain.count, forget.count], [270, 30])
        let executor = try RuntimeExecutor(model: model, threads: nil)
        let budget = StatisticsCollector(layers: layers, positionCap: 1024, rowBudget: 2700, seed: 4)
        XCTAssertEqual(budget.positionCap(images: 270), 10)
        XCTAssertEqual(budget.positionCap(images: 30), 90)
        XCTAssertEqual(budget.positionCap(images: 1), 1024, "never above --positions")
        XCTAssertEqual(StatisticsCollector(layers: layers, positionCap: nil, rowBudget: 7).positionCap(images: 2), 4)
        XCTAssertEqual(StatisticsCollector(layers: layers, positionCap: 50).positionCap(images: 2), 50)
        let stats = try budget.collect(executor: executor, retain: retain, forget: forget)
        for layer in ["conv1.weight", "conv2.weight"] {
            XCTAssertEqual(stats[layer]?.retainRows, 2700, layer)
            XCTAssertEqual(stats[layer]?.forgetRows, 2700, layer)
        }
        XCTAssertEqual(stats["fc1.weight"]?.retainRows, 270)
        let byHand = try StatisticsCollector(layers: layers, positionCap: 10, seed: 4)
            .collect(executor: executor, retain: retain, forget: forget)
        XCTAssertEqual(stats["conv2.weight"]?.retain, byHand["conv2.weight"]?.retain)
    }

    /// Both exports of the sample CNN. The dynamo export folds BatchNorm into the Conv weights; the layers'
    /// inputs are the same, so the statistics tapped on the TorchScript export patch the folded weights,
    /// which must match the reference applied to the folded values.
    func testSampleCNNMatchesReference() throws {
        let result = try patched(model: "samples/fashion_cnn.onnx", fixture: "fashion_cnn")
        let expected = try arrays("formats/models/unlearn/fashion_cnn.patched.npz")
        XCTAssertEqual(Set(result.weights.keys), ["conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight"])
        for (name, tensor) in result.weights { assertClose(tensor, try XCTUnwrap(expected[name]), name) }
        // The statistics themselves (float32 forward vs the reference's float64) agree closely too.
        let stats = try arrays("formats/models/unlearn/fashion_cnn.stats.npz")
        for layer in ["conv1", "conv2", "fc2"] {
            for side in ["retain", "forget"] {
                let reference = try XCTUnwrap(stats["\(layer).\(side)"]).doubleValues()
                let ours = try XCTUnwrap(result.stats["\(layer).weight"])
                let gram = side == "retain" ? ours.retain[0] : ours.forget[0]
                let scale = reference.reduce(0) { max($0, abs($1)) }
                XCTAssertLessThan(TestSupport.maxAbsDifference(gram, reference), 1e-5 * scale, "\(layer) \(side)")
            }
        }
        XCTAssertEqual(result.stats["conv1.weight"]?.retainRows, 270 * 784)
        XCTAssertEqual(result.stats["conv2.weight"]?.forgetRows, 30 * 196)

        let folded = try ONNXFormat.read(path: path("samples/fashion_cnn_dynamo.onnx")).model
        let foldedLayers = LayerDiscovery.discover(in: folded).layers
        XCTAssertEqual(foldedLayers.map(\.name), ["conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight"])
        let plan = try ProjectionPlan(model: folded, layers: foldedLayers, statistics: result.stats)
        let expectedFolded = try arrays("formats/models/unlearn/fashion_cnn.fashion_cnn_dynamo.patched.npz")
        for (name, tensor) in try plan.patchedWeights(alphaRetain: 100, alphaForget: 3) {
            assertClose(tensor, try XCTUnwrap(expectedFolded[name]), "dynamo \(name)")
        }
    }

    func testViTMatchesReference() throws {
        let result = try patched(model: "formats/models/vit_ts.onnx", fixture: "vit")
        let expected = try arrays("formats/models/unlearn/vit.patched.npz")
        XCTAssertEqual(result.weights.count, 14)
        for (name, tensor) in result.weights { assertClose(tensor, try XCTUnwrap(expected[name]), name) }
        // The dynamo export stores the same Linear weights pre-transposed (d × O) under generated names.
        let dynamo = try patched(model: "formats/models/vit_dynamo.onnx", fixture: "vit")
        let expectedDynamo = try arrays("formats/models/unlearn/vit.vit_dynamo.patched.npz")
        XCTAssertEqual(dynamo.weights.count, 14)
        for (name, tensor) in dynamo.weights { assertClose(tensor, try XCTUnwrap(expectedDynamo[name]), name) }
    }

    /// On the sample model, forgetting a class drops its test accuracy to a few percent while the
    /// other classes keep theirs (DESIGN defaults, samples/fashion_train.npz → fashion_test.npz).
    func testForgettingAClassOfTheSampleModel() throws {
        let model = try ONNXFormat.read(path: path("samples/fashion_cnn.onnx")).model
        var configuration = UnlearningConfiguration(forgetClasses: [7])
        configuration.method = .published
        configuration.membershipMaxPerSide = 300
        let unlearner = try Unlearner(model: model, configuration: configuration)
        let result = try unlearner.run(
            train: samples("samples/fashion_train.npz"), test: samples("samples/fashion_test.npz"))
        let test = try XCTUnwrap(result.report.test)
        XCTAssertGreaterThan(test.before.forgetAccuracy ?? 0, 0.9)
        XCTAssertLessThan(test.after.forgetAccuracy ?? 1, 0.03)
        XCTAssertGreaterThan(test.after.retainAccuracy ?? 0, (test.before.retainAccuracy ?? 1) - 0.03)
        let mia = try XCTUnwrap(test.membershipAfter)
        XCTAssertGreaterThanOrEqual(mia.efficacy, try XCTUnwrap(test.membershipBefore).efficacy)
    }
}
