import Foundation
import LetheCore
import LetheIR
import XCTest
@testable import LetheUnlearn

/// The activation cache runs a graph in stretches and must give what whole-model runs give, seeing
/// every patched weight, even one reached through a node computed from weights alone.
final class ActivationCacheTests: XCTestCase {
    private let d = 6, hidden = 5, classes = 3

    /// x → MatMul(x, Transpose(w1t)) + b1 → Relu → MatMul(·, Transpose(w2t)) + b2 → Relu → Gemm head.
    /// The second Transpose is listed first, so it runs before the first layer's cut.
    private func model(seed: UInt64 = 1) -> Model {
        func weights(_ count: Int, _ salt: UInt64) -> [Float] {
            TestSupport.randomValues(count, seed: seed &+ salt).map { Float($0) }
        }
        let nodes = [
            Node(
                name: "t2", opType: "Transpose", inputs: ["w2t"], outputs: ["w2"], attributes: [("perm", .ints([1, 0]))]
            ),
            Node(
                name: "t1", opType: "Transpose", inputs: ["w1t"], outputs: ["w1"], attributes: [("perm", .ints([1, 0]))]
            ),
            Node(name: "mm1", opType: "MatMul", inputs: ["x", "w1"], outputs: ["h1"]),
            Node(name: "add1", opType: "Add", inputs: ["h1", "b1"], outputs: ["a1"]),
            Node(name: "relu1", opType: "Relu", inputs: ["a1"], outputs: ["r1"]),
            Node(name: "mm2", opType: "MatMul", inputs: ["r1", "w2"], outputs: ["h2"]),
            Node(name: "add2", opType: "Add", inputs: ["h2", "b2"], outputs: ["a2"]),
            Node(name: "relu2", opType: "Relu", inputs: ["a2"], outputs: ["r2"]),
            Node(
                name: "head", opType: "Gemm", inputs: ["r2", "w3", "b3"], outputs: ["logits"],
                attributes: [("transB", .int(1))])
        ]
        let initializers = [
            Initializer(name: "w1t", tensor: Tensor(shape: [hidden, d], values: weights(hidden * d, 1))),
            Initializer(name: "b1", tensor: Tensor(shape: [hidden], values: weights(hidden, 2).map { $0 * 0.1 + 0.5 })),
            Initializer(name: "w2t", tensor: Tensor(shape: [hidden, hidden], values: weights(hidden * hidden, 3))),
            Initializer(name: "b2", tensor: Tensor(shape: [hidden], values: weights(hidden, 4).map { $0 * 0.1 + 0.5 })),
            Initializer(name: "w3", tensor: Tensor(shape: [classes, hidden], values: weights(classes * hidden, 5))),
            Initializer(name: "b3", tensor: Tensor(shape: [classes], values: weights(classes, 6)))
        ]
        let graph = Graph(
            nodes: nodes, inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.symbolic("N"), .fixed(d)])],
            outputs: [ValueInfo(name: "logits", dtype: .float32)], initializers: initializers)
        return Model(graph: graph, irVersion: 8, opsets: [("", 17)])
    }

    private func samples(perClass: Int, seed: UInt64) -> SampleSet {
        let noise = TestSupport.randomValues(perClass * classes * d, seed: seed)
        var values: [Float] = [], labels: [Int] = []
        for k in 0..<classes {
            for s in 0..<perClass {
                values += (0..<d).map {
                    Float(noise[(k * perClass + s) * d + $0]) * 0.5 + ($0 % classes == k ? 1.5 : 0)
                }
                labels.append(k)
            }
        }
        return SampleSet(inputs: Tensor(shape: [labels.count, d], values: values), labels: labels)
    }

    private let factory: ModelExecutorFactory = RuntimeExecutor.factory(threads: 1)

    /// The value entering input 0 of `node`, from whole-model runs of `model`.
    private func tapped(_ node: String, of model: Model, samples: SampleSet) throws -> [Float] {
        final class Box: @unchecked Sendable { var values: [Float] = [] }
        let box = Box()
        let index = try XCTUnwrap(model.graph.nodes.firstIndex { $0.name == node })
        let tap = InputTap(node: node, nodeIndex: index, input: 0) { box.values += $0.floatValues() }
        try factory(model).forEachBatch(of: samples, batchSize: 7, taps: [tap]) { _, _ in }
        return box.values
    }

    private func cached(_ value: String, cache: ActivationCache, rows: Int) throws -> [Float] {
        var values: [Float] = []
        try cache.rows(of: value, at: Array(0..<rows)) { values += $0.floatValues() }
        return values
    }

    func testDataFlowKeepsOnlyWhatLaterNodesRead() throws {
        let graph = model().graph
        let flow = try DataFlow(graph: graph)
        let mm2 = try XCTUnwrap(flow.position[5])
        XCTAssertEqual(flow.live(at: mm2), ["r1"])
        XCTAssertEqual(flow.live(at: 0), ["x"])
        let segment = flow.segment(from: try XCTUnwrap(flow.position[2]), to: mm2)
        // Both Transposes (weights alone) run in every stretch; the data nodes are mm1, add1, relu1.
        XCTAssertEqual(Set(segment.nodes), [0, 1, 2, 3, 4])
        XCTAssertEqual(segment.inputs, ["x"])
        XCTAssertEqual(segment.outputs, ["r1"])
    }

    func testStretchesAgreeWithWholeRunsAndSeePatchedWeights() throws {
        let original = model()
        let data = samples(perClass: 10, seed: 9)
        let cache = try ActivationCache(
            model: original, samples: data, batchSize: 7, budget: 1 << 20, makeExecutor: factory)
        try cache.advance(to: 5, model: original)
        XCTAssertEqual(try cached("r1", cache: cache, rows: data.count), try tapped("mm2", of: original, samples: data))

        // Patch the second layer's weight (behind the Transpose that already ran) and move on to the head.
        var patched = original
        let w2t = try XCTUnwrap(original.graph.initializer(named: "w2t"))
        patched.graph.initializers[2].tensor = w2t.replacingValues(with: w2t.doubleValues().map { $0 * -2 + 0.25 })
        try cache.advance(to: 8, model: patched)
        let expected = try tapped("head", of: patched, samples: data)
        XCTAssertNotEqual(expected, try tapped("head", of: original, samples: data))
        let got = try cached("r2", cache: cache, rows: data.count)
        XCTAssertEqual(got.count, expected.count)
        for (a, b) in zip(got, expected) { XCTAssertEqual(a, b, accuracy: 1e-5) }

        // Repeats and any order, in chunks of the batch size.
        var picked: [Float] = []
        try cache.rows(of: "r2", at: [29, 0, 0, 13]) {
            XCTAssertLessThanOrEqual($0.shape[0], 7); picked += $0.floatValues()
        }
        XCTAssertEqual(picked, [29, 0, 0, 13].flatMap { Array(got[($0 * hidden)..<(($0 + 1) * hidden)]) })
    }

    /// Running on to the end gives the model's output, batch by batch, as whole-model runs do.
    func testFinishGivesTheModelsOutput() throws {
        let original = model()
        let data = samples(perClass: 10, seed: 9)
        let cache = try ActivationCache(
            model: original, samples: data, batchSize: 7, budget: 1 << 20, makeExecutor: factory)
        try cache.advance(to: 5, model: original)
        let batches = try cache.finish(model: original, output: "logits")
        XCTAssertEqual(batches.map { $0.shape }, [[7, 3], [7, 3], [7, 3], [7, 3], [2, 3]])
        let expected = try factory(original).logits(of: data, batchSize: 30).values
        let got = batches.flatMap { $0.floatValues() }
        XCTAssertEqual(got.count, expected.count)
        for (a, b) in zip(got, expected) { XCTAssertEqual(a, b, accuracy: 1e-5) }
        XCTAssertThrowsError(try cache.advance(to: 8, model: original), "the cache is spent")
    }

    func testBudgetIsEnforced() throws {
        let original = model()
        let data = samples(perClass: 10, seed: 9)
        XCTAssertThrowsError(
            try ActivationCache(
                model: original, samples: data, batchSize: 7, budget: data.inputs.byteCount - 1,
                makeExecutor: factory))
        // r1 takes 5 floats a sample where x took 6: it fits in the input's budget.
        let cache = try ActivationCache(
            model: original, samples: data, batchSize: 7, budget: data.inputs.byteCount,
            makeExecutor: factory)
        XCTAssertNoThrow(try cache.advance(to: 5, model: original))
    }

    /// The erasure method gives the same model on the cache as on whole-model passes.
    func testErasureOnTheCacheMatchesWholeModelPasses() throws {
        var configuration = UnlearningConfiguration(forgetClasses: [1])
        configuration.samples = 60
        configuration.validationPerClass = 10
        configuration.membershipInference = false
        configuration.probe = false
        configuration.erasureDepth = 2
        configuration.erasureDistortionCap = 1
        let train = samples(perClass: 60, seed: 11)
        let onCache = try Unlearner(model: model(), configuration: configuration, executorFactory: factory).run(
            train: train)
        configuration.activationCacheBytes = 0
        let whole = try Unlearner(model: model(), configuration: configuration, executorFactory: factory).run(
            train: train)
        XCTAssertEqual(onCache.report.erasure?.erasedLayers, ["w1t", "w2t"])
        XCTAssertFalse(onCache.report.notes.contains { $0.contains("whole model") }, "\(onCache.report.notes)")
        XCTAssertTrue(
            whole.report.notes.contains { $0.contains("because the samples exceed the cache budget") },
            "\(whole.report.notes)")
        XCTAssertEqual(Set(onCache.patchedWeights.keys), Set(whole.patchedWeights.keys))
        XCTAssertEqual(Set(onCache.patchedWeights.keys), ["w1t", "b1", "w2t", "b2", "w3", "b3"])
        for (name, tensor) in onCache.patchedWeights {
            let a = tensor.doubleValues(), b = try XCTUnwrap(whole.patchedWeights[name]).doubleValues()
            let scale = b.map(abs).max() ?? 1
            for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: 1e-4 * scale, name) }
        }
    }
}
