import LetheCore
import LetheIR
import XCTest
@testable import LetheRuntime

/// `fuseWeightTransposes`: MatMul and Gemm read a constant 2-D weight transposed in place of a
/// folded `Transpose(W)` copy, and the pass leaves alone every Transpose whose output must survive.
final class WeightTransposeFusionTests: XCTestCase {
    /// `y = MatMul(x, Transpose(w))` with `w` of `outer × inner`, then an optional bias Add and Relu
    /// (the epilogue a ViT's MLP has); `pretransposed` stores `wᵀ` as the initializer instead, the
    /// graph constant folding used to make of it.
    private func linearModel(
        rank: Int, inner: Int, outer: Int, bias: Bool = false, relu: Bool = false, pretransposed: Bool = false,
        perm: [Int]? = [1, 0], seed: UInt64
    ) -> (model: Model, weight: Tensor, bias: Tensor?) {
        var g = GraphBuilder()
        g.input("x", [Int?](repeating: nil, count: rank - 1) + [inner])
        let weight = randomTensor([outer, inner], seed: seed)
        let biasValues = bias ? randomTensor([outer], seed: seed + 1) : nil
        if pretransposed {
            g.constant("w_t", transposed(weight))
        } else {
            g.constant("w", weight)
            g.node("Transpose", ["w"], ["w_t"], name: "transpose", perm.map { [("perm", .ints($0))] } ?? [])
        }
        var last = "x"
        func step(_ op: String, _ inputs: [String], _ output: String) {
            g.node(op, inputs, [output], name: output)
            last = output
        }
        step("MatMul", [last, "w_t"], "product")
        if let biasValues {
            g.constant("b", biasValues)
            step("Add", [last, "b"], "biased")
        }
        if relu { step("Relu", [last], "activated") }
        g.output(last)
        return (g.model, weight, biasValues)
    }

    private func transposed(_ w: Tensor) -> Tensor {
        let (rows, columns) = (w.shape[0], w.shape[1]), values = w.floatValues()
        return Tensor(
            shape: [columns, rows], values: (0..<(rows * columns)).map { values[($0 % rows) * columns + $0 / rows] })
    }

    /// `relu?(x · wᵀ + bias)` in float64, row by row over every leading axis of `x`.
    private func reference(_ x: Tensor, _ w: Tensor, _ bias: Tensor?, relu: Bool) -> [Float] {
        let outer = w.shape[0], inner = w.shape[1], rows = x.elementCount / inner
        let xv = x.floatValues(), wv = w.floatValues(), bv = bias?.floatValues()
        var y = [Float](repeating: 0, count: rows * outer)
        for r in 0..<rows {
            for o in 0..<outer {
                var sum = Double(bv?[o] ?? 0)
                for i in 0..<inner { sum += Double(xv[r * inner + i]) * Double(wv[o * inner + i]) }
                y[r * outer + o] = Float(relu ? max(0, sum) : sum)
            }
        }
        return y
    }

    private func plannedOps(_ model: Model, required: Set<String> = []) -> [WorkingGraph.Entry] {
        var graph = WorkingGraph(model: model, required: required)
        graph.fuseWeightTransposes()
        return graph.entries
    }

    func testMatMulReadsTheWeightTransposed() {
        let entries = plannedOps(linearModel(rank: 3, inner: 8, outer: 5, seed: 1).model)
        XCTAssertEqual(entries.map(\.node.opType), ["MatMul"])
        XCTAssertEqual(entries[0].node.inputs, ["x", "w"])
        XCTAssertTrue(entries[0].weightTransposed)
        // No perm reverses a 2-D tensor's axes too.
        let defaultPerm = plannedOps(linearModel(rank: 2, inner: 8, outer: 5, perm: nil, seed: 2).model)
        XCTAssertEqual(defaultPerm.map(\.node.opType), ["MatMul"])
        XCTAssertTrue(defaultPerm[0].weightTransposed)
    }

    /// A ViT's MLP shapes at odd row counts and A of rank 1 to 4, with bias and activation fused, on
    /// both the oneDNN path (weights up to 2 MiB) and the GEMM path (larger ones).
    func testProductsAgreeWithTheUnfoldedGraph() throws {
        let cases: [(inner: Int, outer: Int, shapes: [[Int]])] = [
            (24, 40, [[24], [7, 24], [3, 5, 24], [2, 3, 1, 24]]),
            (96, 160, [[1, 96], [65, 96], [2, 17, 96], [3, 1, 5, 96]]),
            (768, 1024, [[768], [3, 768], [2, 37, 768], [1, 3, 7, 768]]),
            (1024, 640, [[5, 1024], [2, 33, 1024], [2, 2, 9, 1024]])
        ]
        for (index, c) in cases.enumerated() {
            for shape in c.shapes {
                for (bias, relu) in [(false, false), (true, true)] {
                    let seed = UInt64(100 * index)
                    let spec = linearModel(
                        rank: shape.count, inner: c.inner, outer: c.outer, bias: bias, relu: relu, seed: seed)
                    let folded = linearModel(
                        rank: shape.count, inner: c.inner, outer: c.outer, bias: bias, relu: relu,
                        pretransposed: true, seed: seed)
                    let x = randomTensor(shape, seed: seed + 7)
                    let expected = reference(x, spec.weight, spec.bias, relu: relu)
                    for threads in [1, 2] {
                        let options = SessionOptions(threads: threads)
                        let name = spec.model.graph.outputs[0].name
                        let y = try XCTUnwrap(InferenceSession(model: spec.model, options: options).run(["x": x])[name])
                        let z = try XCTUnwrap(
                            InferenceSession(model: folded.model, options: options).run(["x": x])[name])
                        let label = "\(c.inner)→\(c.outer) \(shape) bias \(bias) threads \(threads)"
                        XCTAssertEqual(y.shape, Array(shape.dropLast()) + [c.outer], label)
                        XCTAssertLessThanOrEqual(relativeError(y.floatValues(), expected), 1e-5, label)
                        XCTAssertLessThanOrEqual(relativeError(y.floatValues(), z.floatValues()), 1e-5, label)
                    }
                }
            }
        }
    }

    /// The plan holds the weight once: no folded transposed copy, no Transpose step.
    func testThePlanKeepsNoTransposedCopy() throws {
        let spec = linearModel(rank: 3, inner: 1024, outer: 640, bias: true, seed: 5)
        let plan = try ExecutionPlan(model: spec.model, required: [], context: ExecutionContext(threads: 1))
        XCTAssertEqual(plan.steps.map(\.opType), ["MatMul"])
        let elements = plan.constants.map { $0.tensor.elementCount }.reduce(0, +)
        XCTAssertFalse(plan.constants.contains { $0.tensor.shape == [1024, 640] })
        XCTAssertLessThanOrEqual(elements, 640 * 1024 + 640, "constants: \(plan.constants.map(\.tensor.shape))")
    }

    func testGemmFlipsTransB() throws {
        for transB in [0, 1] {
            var g = GraphBuilder()
            g.input("x", [nil, 6])
            let w = randomTensor(transB == 0 ? [4, 6] : [6, 4], seed: 20)
            g.constant("w", w)
            g.constant("c", randomTensor([4], seed: 21))
            g.node("Transpose", ["w"], ["w_t"], name: "transpose", [("perm", .ints([1, 0]))])
            g.node("Gemm", ["x", "w_t", "c"], ["y"], name: "gemm", [("transB", .int(transB))])
            g.output("y")
            let entries = plannedOps(g.model)
            XCTAssertEqual(entries.map(\.node.opType), ["Gemm"])
            XCTAssertEqual(entries[0].node.inputs, ["x", "w", "c"])
            XCTAssertEqual(entries[0].node.attribute("transB")?.intValue, 1 - transB)
            let x = randomTensor([3, 6], seed: 22)
            let y = try XCTUnwrap(InferenceSession(model: g.model).run(["x": x])["y"])
            let wRows = transB == 0 ? w : transposed(w)
            var expected = reference(x, wRows, nil, relu: false)
            let cv = randomTensor([4], seed: 21).floatValues()
            for i in expected.indices { expected[i] += cv[i % 4] }
            assertClose(y, expected, shape: [3, 4])
        }
    }

    func testEveryMatMulReaderIsRewritten() {
        var g = GraphBuilder()
        g.input("x", [nil, 6])
        g.constant("w", randomTensor([4, 6], seed: 30))
        g.node("Transpose", ["w"], ["w_t"], name: "transpose")
        g.node("MatMul", ["x", "w_t"], ["y1"], name: "mm1")
        g.node("MatMul", ["x", "w_t"], ["y2"], name: "mm2")
        g.output("y1")
        g.output("y2")
        let entries = plannedOps(g.model)
        XCTAssertEqual(entries.map(\.node.opType), ["MatMul", "MatMul"])
        XCTAssertEqual(entries.map(\.weightTransposed), [true, true])
        XCTAssertEqual(entries.map { $0.node.inputs.last }, ["w", "w"])
    }

    /// Where the transposed value has to exist, or the Transpose is not a 2-D weight's, nothing changes.
    func testTransposesThatMustStay() throws {
        func untouched(
            _ entries: [WorkingGraph.Entry], _ label: String, file: StaticString = #filePath, line: UInt = #line
        ) {
            XCTAssertTrue(entries.contains { $0.node.opType == "Transpose" }, label, file: file, line: line)
            XCTAssertFalse(entries.contains(where: \.weightTransposed), label, file: file, line: line)
        }
        func graph(_ build: (inout GraphBuilder) -> Void) -> Model {
            var g = GraphBuilder()
            g.input("x", [nil, 6])
            g.constant("w", randomTensor([4, 6], seed: 40))
            build(&g)
            return g.model
        }
        let alsoRead = graph { g in
            g.node("Transpose", ["w"], ["w_t"], name: "transpose")
            g.node("MatMul", ["x", "w_t"], ["y"], name: "mm")
            g.node("Relu", ["w_t"], ["r"], name: "relu")
            g.output("y")
            g.output("r")
        }
        untouched(plannedOps(alsoRead), "also read by Relu")
        let asLeftOperand = graph { g in
            g.input("z", [4, 2])
            g.node("Transpose", ["w"], ["w_t"], name: "transpose")
            g.node("MatMul", ["x", "w_t"], ["y"], name: "mm")
            g.node("MatMul", ["w_t", "z"], ["v"], name: "mm_left")
            g.output("y")
            g.output("v")
        }
        untouched(plannedOps(asLeftOperand), "also a left operand")
        let asOutput = graph { g in
            g.node("Transpose", ["w"], ["w_t"], name: "transpose")
            g.node("MatMul", ["x", "w_t"], ["y"], name: "mm")
            g.output("y")
            g.output("w_t")
        }
        untouched(plannedOps(asOutput), "a graph output")
        let tapped = graph { g in
            g.node("Transpose", ["w"], ["w_t"], name: "transpose")
            g.node("MatMul", ["x", "w_t"], ["y"], name: "mm")
            g.output("y")
        }
        untouched(plannedOps(tapped, required: ["w_t"]), "a tapped value")
        XCTAssertEqual(plannedOps(tapped).map(\.node.opType), ["MatMul"])
        let runTime = graph { g in
            g.input("v", [4, 6])
            g.node("Transpose", ["v"], ["v_t"], name: "transpose")
            g.node("MatMul", ["x", "v_t"], ["y"], name: "mm")
            g.output("y")
        }
        untouched(plannedOps(runTime), "a run-time right-hand side")

        // A 3-D constant swapping its last two axes: a batched product, not a weight.
        var g = GraphBuilder()
        g.input("x", [2, 3, 6])
        g.constant("w", randomTensor([2, 4, 6], seed: 41))
        g.node("Transpose", ["w"], ["w_t"], name: "transpose", [("perm", .ints([0, 2, 1]))])
        g.node("MatMul", ["x", "w_t"], ["y"], name: "mm")
        g.output("y")
        untouched(plannedOps(g.model), "3-D perm [0, 2, 1]")
    }

    /// A tap on the transposed weight keeps the Transpose: the tap sees `wᵀ` and the product is the same.
    func testATapOnTheTransposedWeightStillSeesIt() throws {
        let spec = linearModel(rank: 3, inner: 12, outer: 5, bias: true, seed: 50)
        let session = try InferenceSession(model: spec.model, options: .init(threads: 2))
        let x = randomTensor([2, 3, 12], seed: 51)
        let plain = try XCTUnwrap(session.run(["x": x])["biased"])
        let recorder = TapRecorder()
        let tapped = try XCTUnwrap(session.run(["x": x], taps: [recorder.tap("product", .input(1))])["biased"])
        XCTAssertEqual(plain.floatValues(), tapped.floatValues())
        XCTAssertEqual(recorder.tensors.first?.shape, [12, 5])
        XCTAssertEqual(recorder.tensors.first?.floatValues(), transposed(spec.weight).floatValues())
    }
}
