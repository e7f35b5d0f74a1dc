import LetheCore
import LetheIR
import XCTest
@testable import LetheRuntime

/// A session's plans (one per set of tapped values) share what they derive from the model: folded
/// constants, widened half-precision weights and the buffer pool.
final class DerivedConstantsTests: XCTestCase {
    /// y = relu(x · Neg(w)) + h, with `Neg(w)` folded and `h` a float16 initializer widened. (Not
    /// a Transpose: MatMul reads a transposed weight in place, see `fuseWeightTransposes`.)
    private func model() -> Model {
        var g = GraphBuilder()
        g.input("x", [nil, 4])
        g.constant("w", randomTensor([4, 3], seed: 5))
        g.constant("h", Tensor(shape: [3], values: [Float(0.5), -1, 2]).convertedFloatingPoint(to: .float16))
        g.node("Neg", ["w"], ["wn"], name: "neg")
        g.node("MatMul", ["x", "wn"], ["m"], name: "mm")
        g.node("Relu", ["m"], ["r"], name: "relu")
        g.node("Add", ["r", "h"], ["y"], name: "add")
        g.output("y")
        return g.model
    }

    private func constant(_ plan: ExecutionPlan, shape: [Int]) throws -> Tensor {
        try XCTUnwrap(plan.constants.first { $0.tensor.shape == shape }?.tensor, "no constant of shape \(shape)")
    }

    func testPlansOfOneSessionShareDerivedConstantsAndPool() throws {
        let session = try InferenceSession(model: model(), options: .init(threads: 1))
        let x = randomTensor([2, 4], seed: 6)
        let plain = try XCTUnwrap(session.run(["x": x])["y"])
        let recorder = TapRecorder()
        let tapped = try XCTUnwrap(session.run(["x": x], taps: [recorder.tap("relu", .input(0))])["y"])
        XCTAssertEqual(plain.floatValues(), tapped.floatValues())
        XCTAssertEqual(recorder.tensors.count, 1)

        let first = try XCTUnwrap(session.cachedPlan(for: []))
        let second = try XCTUnwrap(session.cachedPlans.first { $0 !== first })
        XCTAssertTrue(first.pool === second.pool)
        for shape in [[4, 3], [3]] {
            let a = try constant(first, shape: shape), b = try constant(second, shape: shape)
            XCTAssertEqual(a.dtype, .float32)
            XCTAssertEqual(a.floats, b.floats, "the \(shape) constant is one buffer, not one per plan")
        }

        // Separate sessions derive their own.
        let other = try InferenceSession(model: model(), options: .init(threads: 1))
        let third = try XCTUnwrap(other.cachedPlan(for: []))
        XCTAssertNotEqual(try constant(first, shape: [4, 3]).floats, try constant(third, shape: [4, 3]).floats)
    }

    /// A node that cannot fold stays in every plan (its error surfaces when the model runs), and a
    /// later plan does not take it for folded.
    func testUnfoldableNodeIsNotShared() throws {
        let derived = DerivedConstants()
        let node = Node(name: "n", opType: "Transpose", inputs: ["w"], outputs: ["wt"], attributes: [])
        XCTAssertNil(derived.folded(node))
        let stored = derived.storeFolded(node, [randomTensor([2, 2], seed: 1)])
        let again = derived.storeFolded(node, [randomTensor([2, 2], seed: 2)])
        XCTAssertEqual(stored[0].floats, again[0].floats, "the first stored value wins")
        XCTAssertEqual(derived.folded(node)?[0]?.floats, stored[0].floats)
        let unnamed = Node(name: "u", opType: "Transpose", inputs: ["w"], outputs: [""], attributes: [])
        XCTAssertNil(derived.folded(unnamed))
    }
}
