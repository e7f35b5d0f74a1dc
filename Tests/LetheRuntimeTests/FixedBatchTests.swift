import LetheCore
import LetheIR
import XCTest
@testable import LetheRuntime

/// Models exported with a batch of 1: the free-batch copy runs batches and computes what
/// one-sample runs compute, or the plan falls back to one sample at a time with a note.
final class FixedBatchTests: XCTestCase {
    /// x [1, 2, 3] → Reshape to the constant [1, -1] → MatMul → a class token of batch 1 (made from a
    /// weight through an Unsqueeze) concatenated on axis 1 → Reshape back to [1, 2, 2].
    private func flattenAndToken(allowzero: Int = 1) -> Model {
        var b = GraphBuilder()
        b.input("x", [1, 2, 3])
        b.constant("flat", Tensor(shape: [2], values: [Int64(1), -1]))
        b.constant("w", randomTensor([6, 2], seed: 1))
        b.constant("token", randomTensor([1, 2], seed: 2))
        b.constant("axes", Tensor(shape: [1], values: [Int64(1)]))
        b.constant("back", Tensor(shape: [3], values: [Int64(1), 2, 2]))
        b.node("Reshape", ["x", "flat"], ["f"], [("allowzero", .int(allowzero))])
        b.node("MatMul", ["f", "w"], ["h"])
        b.node("Unsqueeze", ["h", "axes"], ["h3"])
        b.node("Unsqueeze", ["token", "axes"], ["t3"])
        b.node("Concat", ["t3", "h3"], ["joined"], [("axis", .int(1))])
        b.node("Reshape", ["joined", "back"], ["y"])
        b.output("y")
        var model = b.model
        model.graph.outputs = [ValueInfo(name: "y", dtype: .float32, shape: [.fixed(1), .fixed(2), .fixed(2)])]
        return model
    }

    func testFreedCopyRunsBatchesAsOneSampleRunsDo() throws {
        let model = flattenAndToken()
        XCTAssertTrue(FixedBatch.isFixed(model))
        let probe = randomTensor([5, 2, 3], seed: 3)
        let plan = FixedBatch.plan(for: model, probe: probe)
        XCTAssertNil(plan.batchLimit)
        XCTAssertNil(plan.note)
        XCTAssertEqual(plan.model.graph.runtimeInputs.first?.shape?.first, .symbolic("batch"))
        // The original is untouched; the copy adds nodes and shape constants of its own.
        XCTAssertEqual(model.graph.nodes.count, 6)
        XCTAssertGreaterThan(plan.model.graph.nodes.count, 6)

        let batched = try InferenceSession(model: plan.model).run(["x": probe])["y"]!
        XCTAssertEqual(batched.shape, [5, 2, 2])
        let single = try InferenceSession(model: model)
        let values = batched.floatValues()
        for row in 0..<5 {
            let x = Tensor(shape: [1, 2, 3], values: Array(probe.floatValues()[(row * 6)..<((row + 1) * 6)]))
            XCTAssertEqual(try single.run(["x": x])["y"]!.floatValues(), Array(values[(row * 4)..<((row + 1) * 4)]))
        }
        // Without the copy the original refuses a batch.
        XCTAssertThrowsError(try single.run(["x": probe]))
    }

    func testModelsThatMixTheBatchRunOneSampleAtATime() throws {
        // Reshape [1, -1] of a batch of 2 would be fine, but a ReduceSum over axis 0 mixes samples:
        // the freed copy computes something else and the plan keeps the original at batch 1.
        var b = GraphBuilder()
        b.input("x", [1, 3])
        b.constant("axes", Tensor(shape: [1], values: [Int64(0)]))
        b.node("ReduceSum", ["x", "axes"], ["s"], [("keepdims", .int(1))])
        b.node("Add", ["x", "s"], ["y"])
        b.output("y")
        let plan = FixedBatch.plan(for: b.model, probe: randomTensor([4, 3], seed: 4))
        XCTAssertEqual(plan.batchLimit, 1)
        XCTAssertTrue(plan.note?.contains("one sample at a time") ?? false, plan.note ?? "no note")
        XCTAssertEqual(plan.model.graph.nodes.count, 2)

        // A model with a free batch is left alone; so is a probe of one sample.
        var free = GraphBuilder()
        free.input("x", [nil, 3])
        free.node("Relu", ["x"], ["y"])
        free.output("y")
        let unchanged = FixedBatch.plan(for: free.model, probe: randomTensor([4, 3], seed: 5))
        XCTAssertNil(unchanged.batchLimit)
        XCTAssertNil(unchanged.note)
        XCTAssertEqual(FixedBatch.plan(for: flattenAndToken(), probe: randomTensor([1, 2, 3], seed: 6)).batchLimit, 1)
    }
}
