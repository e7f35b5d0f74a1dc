import LetheCore
import LetheIR
import XCTest
@testable import LetheRuntime

/// The tanh-GELU and one-hot-lookup rewrites: which graphs they rewrite, and that the rewritten
/// graph computes what the spelled-out one does (the same graph with an intermediate made a graph
/// output, which keeps every rewrite away).
final class ElementwiseFusionTests: XCTestCase {
    private func scalar(_ g: inout GraphBuilder, _ name: String, _ value: Float, rank: Int = 0) {
        g.constant(name, Tensor(shape: [Int](repeating: 1, count: rank), values: [value]))
    }

    /// magika's spelling: the cube as three Muls, ½ and x applied last; constants on the left.
    private func jaxGelu(_ g: inout GraphBuilder, _ x: String, _ y: String, oneRank: Int = 0) {
        scalar(&g, "k", 0.044715)
        scalar(&g, "c", 0.7978846)
        scalar(&g, "one", 1, rank: oneRank)
        scalar(&g, "half", 0.5)
        g.node("Mul", ["k", x], ["m0"])
        g.node("Mul", [x, "m0"], ["m1"])
        g.node("Mul", [x, "m1"], ["m2"])
        g.node("Add", [x, "m2"], ["s"])
        g.node("Mul", ["c", "s"], ["m3"])
        g.node("Tanh", ["m3"], ["t"])
        g.node("Add", ["one", "t"], ["p"])
        g.node("Mul", ["half", "p"], ["h"])
        g.node("Mul", [x, "h"], [y])
    }

    /// PyTorch's spelling: `0.5 * x * (1 + tanh(c * (x + 0.044715 * x ** 3)))`.
    private func torchGelu(_ g: inout GraphBuilder, _ x: String, _ y: String) {
        scalar(&g, "three", 3)
        scalar(&g, "k", 0.044715)
        scalar(&g, "c", 0.7978845608)
        scalar(&g, "one", 1)
        scalar(&g, "half", 0.5)
        g.node("Mul", [x, "half"], ["hx"])
        g.node("Pow", [x, "three"], ["cube"])
        g.node("Mul", ["cube", "k"], ["kc"])
        g.node("Add", [x, "kc"], ["s"])
        g.node("Mul", ["s", "c"], ["m3"])
        g.node("Tanh", ["m3"], ["t"])
        g.node("Add", ["t", "one"], ["p"])
        g.node("Mul", ["hx", "p"], [y])
    }

    private func rewritten(_ model: Model, _ rewrite: (inout WorkingGraph) -> Void) -> [String] {
        var graph = WorkingGraph(model: model, required: [])
        rewrite(&graph)
        return graph.entries.map(\.node.opType)
    }

    private func run(_ model: Model, _ feeds: [String: Tensor]) throws -> [Float] {
        try InferenceSession(model: model, options: .init(threads: 2)).run(feeds)["y"]!.floatValues()
    }

    func testBothSpellingsOfTanhGeluBecomeOneGeluWithTheSameValues() throws {
        let x = Tensor(shape: [3, 40], values: randomFloats(120, seed: 3).map { $0 * 6 })
        for spell in [jaxGelu(_:_:_:oneRank:), { g, x, y, _ in self.torchGelu(&g, x, y) }] {
            var g = GraphBuilder()
            g.input("x", [3, 40])
            spell(&g, "x", "y", 0)
            g.output("y")
            XCTAssertEqual(rewritten(g.model) { $0.fuseTanhGelu() }, ["Gelu"])
            let fused = try run(g.model, ["x": x])
            g.output("t") // an intermediate that must stay visible: no rewrite
            XCTAssertEqual(rewritten(g.model) { $0.fuseTanhGelu() }.count, g.nodes.count)
            let spelled = try run(g.model, ["x": x])
            XCTAssertLessThanOrEqual(relativeError(fused, spelled), 1e-6)
            // And both are GELU.
            let reference = x.floatValues().map { v -> Float in
                let d = Double(v)
                return Float(0.5 * d * (1 + tanh(0.7978845608028654 * (d + 0.044715 * d * d * d))))
            }
            XCTAssertLessThanOrEqual(relativeError(fused, reference), 1e-6)
        }
    }

    func testTanhGeluWithOtherConstantsOrAHigherRankOneIsLeftAlone() throws {
        var g = GraphBuilder()
        g.input("x", [3, 40])
        jaxGelu(&g, "x", "y")
        g.initializers = g.initializers.map {
            $0.name == "k" ? Initializer(name: "k", tensor: Tensor(scalar: Float(0.045))) : $0
        }
        g.output("y")
        XCTAssertFalse(rewritten(g.model) { $0.fuseTanhGelu() }.contains("Gelu"))
        // A [1, 1, 1] constant would raise a rank-2 x to rank 3, which one Gelu node cannot.
        var h = GraphBuilder()
        h.input("x", [3, 40])
        jaxGelu(&h, "x", "y", oneRank: 3)
        h.output("y")
        XCTAssertFalse(rewritten(h.model) { $0.fuseTanhGelu() }.contains("Gelu"))
        XCTAssertEqual(
            try InferenceSession(model: h.model).run(["x": randomTensor([3, 40], seed: 1)])["y"]?.shape, [1, 3, 40])
    }

    /// magika's convolution epilogue: a per-channel bias Add, then the tanh GELU, which the plan
    /// fuses into the Add and applies block by block (rows longer and shorter than a block).
    func testBiasAddWithFusedGeluMatchesTheSpelledOutGraph() throws {
        for length in [9000, 37] {
            var g = GraphBuilder()
            g.input("x", [2, 3, length])
            g.constant("bias", randomTensor([1, 3, 1], seed: 4))
            g.node("Add", ["x", "bias"], ["a"])
            jaxGelu(&g, "a", "y")
            g.output("y")
            let x = Tensor(shape: [2, 3, length], values: randomFloats(6 * length, seed: 9).map { $0 * 5 })
            let fused = try run(g.model, ["x": x])
            g.output("a")
            XCTAssertEqual(fused, try run(g.model, ["x": x]))
        }
    }

    /// magika's convolution as JAX exports it: Conv, a Slice keeping everything, Squeeze of the
    /// trailing axis, then a per-channel bias Add with Relu fused. The bias and Relu move into the
    /// Conv; a Slice that drops channels, or a bias that varies along a spatial axis, stops it.
    func testBiasAddAfterSqueezedConvMovesIntoTheConv() throws {
        func model(channelStart: Int = 0, biasShape: [Int] = [1, 6, 1], keepSqueezed: Bool = false) -> Model {
            var g = GraphBuilder()
            g.input("x", [2, 3, 20, 1])
            g.constant("w", randomTensor([6, 3, 5, 1], seed: 51))
            g.constant("starts", Tensor.int64([0, channelStart, 0, 0]))
            g.constant("ends", Tensor.int64([Int(Int32.max), Int(Int32.max), Int(Int32.max), 1]))
            g.constant("axes", Tensor.int64([0, 1, 2, 3]))
            g.constant("squeeze", Tensor.int64([3]))
            g.constant("bias", randomTensor(biasShape, seed: 52))
            g.node("Conv", ["x", "w"], ["c"], [("kernel_shape", .ints([5, 1]))])
            g.node("Slice", ["c", "starts", "ends", "axes"], ["s"])
            g.node("Squeeze", ["s", "squeeze"], ["q"])
            g.node("Add", ["q", "bias"], ["a"])
            g.node("Relu", ["a"], ["y"])
            g.output("y")
            if keepSqueezed { g.output("q") }
            return g.model
        }
        let rewrite: (inout WorkingGraph) -> Void = {
            $0.fuseEpilogues()
            $0.fuseConvBiasThroughSqueeze()
        }
        XCTAssertEqual(rewritten(model(), rewrite), ["Conv", "Slice", "Squeeze"])
        XCTAssertEqual(rewritten(model(channelStart: 1), rewrite), ["Conv", "Slice", "Squeeze", "Add"])
        XCTAssertEqual(rewritten(model(biasShape: [1, 1, 16]), rewrite), ["Conv", "Slice", "Squeeze", "Add"])
        let x = randomTensor([2, 3, 20, 1], seed: 53)
        let fused = try run(model(), ["x": x]), spelled = try run(model(keepSqueezed: true), ["x": x])
        XCTAssertEqual(fused.count, 2 * 6 * 16)
        XCTAssertLessThanOrEqual(relativeError(fused, spelled), 1e-6)
        XCTAssertTrue(fused.contains { $0 == 0 } && fused.contains { $0 > 0 })
    }

    /// An embedding as JAX exports it: one-hot by Expand + Equal + Cast, then MatMul, bias, GELU.
    private func oneHotModel(classes: Int, width: Int, extraOutput: String? = nil) -> GraphBuilder {
        var g = GraphBuilder()
        g.input("ids", [2, 9, 1], dtype: .int32)
        g.constant("shape", Tensor.int64([2, 9, 1]))
        g.constant("classes", Tensor(shape: [1, 1, classes], values: (0..<classes).map { Int32($0) }))
        g.constant("w", randomTensor([classes, width], seed: 11))
        g.constant("bias", randomTensor([1, 1, width], seed: 12))
        g.node("Expand", ["ids", "shape"], ["e"])
        g.node("Equal", ["e", "classes"], ["eq"])
        g.node("Cast", ["eq"], ["hot"], [("to", .int(1))])
        g.node("MatMul", ["hot", "w"], ["mm"])
        g.node("Add", ["mm", "bias"], ["a"])
        jaxGelu(&g, "a", "y")
        g.output("y")
        if let extraOutput { g.output(extraOutput) }
        return g
    }

    func testOneHotMatMulBecomesALookupWithIdenticalValues() throws {
        // Indices outside 0..<D (negative, D itself, far beyond) give the zero row, as the one-hot does.
        let ids: [Int32] = [0, 5, 16, 3, -1, 17, 1000, 2, 9, 9, 0, 12, 4, 4, 15, 7, 6, 1]
        let feeds = ["ids": Tensor(shape: [2, 9, 1], values: ids)]
        let fusedModel = oneHotModel(classes: 17, width: 24).model
        XCTAssertEqual(
            rewritten(fusedModel) {
                $0.fuseTanhGelu()
                $0.fuseOneHotLookups(context: ExecutionContext(threads: 1))
            }, ["OneHotLookup"])
        let fused = try InferenceSession(model: fusedModel, options: .init(threads: 2)).run(feeds)["y"]!
        XCTAssertEqual(fused.shape, [2, 9, 24])
        let spelled = try run(oneHotModel(classes: 17, width: 24, extraOutput: "hot").model, feeds)
        XCTAssertEqual(fused.floatValues(), spelled)
    }

    func testOneHotWithClassesOtherThanARangeIsLeftAlone() throws {
        var g = oneHotModel(classes: 5, width: 3)
        g.initializers = g.initializers.map {
            $0.name == "classes"
                ? Initializer(
                    name: "classes",
                    tensor: Tensor(
                        shape: [1, 1, 5],
                        values: [Int32](
                            [0, 1, 2, 4, 3]))) : $0
        }
        XCTAssertFalse(
            rewritten(g.model) { $0.fuseOneHotLookups(context: ExecutionContext(threads: 1)) }.contains(
                "OneHotLookup"))
    }

    /// E[x²] of a decomposed LayerNorm: the Mul(x, x) folds into the reduction, which must give
    /// the very sums the spelled-out graph does, on its vectorized path (a middle axis), its
    /// generic path (the last axis) and with no axes at all (noop: the squares themselves).
    func testSquareFoldsIntoReduceSumAndMeanWithIdenticalValues() throws {
        let x = randomTensor([3, 40, 24], seed: 31)
        for (op, axes, noop) in [
            ("ReduceSum", [1], 0), ("ReduceMean", [1], 0), ("ReduceSum", [-1], 0), ("ReduceMean", [0, 2], 0),
            ("ReduceSum", [], 1)
        ] {
            func model(keepSquare: Bool) -> Model {
                var g = GraphBuilder()
                g.opset = 18
                g.input("x", [3, 40, 24])
                g.constant("axes", Tensor.int64(axes))
                g.node("Mul", ["x", "x"], ["square"])
                g.node(op, ["square", "axes"], ["y"], [("keepdims", .int(0)), ("noop_with_empty_axes", .int(noop))])
                g.output("y")
                if keepSquare { g.output("square") }
                return g.model
            }
            let fusedOps = rewritten(model(keepSquare: false)) { $0.fuseSquareIntoReduce() }
            XCTAssertEqual(fusedOps, [op == "ReduceSum" ? "ReduceSumOfSquares" : "ReduceMeanOfSquares"])
            XCTAssertEqual(rewritten(model(keepSquare: true)) { $0.fuseSquareIntoReduce() }, ["Mul", op])
            XCTAssertEqual(
                try run(model(keepSquare: false), ["x": x]), try run(model(keepSquare: true), ["x": x]), "\(op) \(axes)"
            )
        }
    }

    /// magika's LayerNorm tail and variants: trees of Add/Sub/Mul/Div become one node whose values
    /// equal the separate nodes' exactly, also where it runs them one by one (an intermediate
    /// smaller than the output, integer inputs) and with a leaf read twice.
    func testElementwiseTreesFuseWithIdenticalValues() throws {
        struct Case {
            var shapes: [String: [Int]]
            var dtype: DType = .float32
            var nodes: [(String, [String], String)]
            var fusedOps: [String]
        }
        let layerNormTail: [(String, [String], String)] = [
            ("Sub", ["x", "mean"], "centred"), ("Mul", ["rsqrt", "gamma"], "scale"),
            ("Mul", ["centred", "scale"], "scaled"), ("Add", ["scaled", "beta"], "y")
        ]
        let cases = [
            Case(
                shapes: [
                    "x": [3, 40, 300], "mean": [3, 1, 300], "rsqrt": [3, 1, 300], "gamma": [1, 40, 1],
                    "beta": [1, 40, 1]
                ], nodes: layerNormTail, fusedOps: ["Elementwise"]),
            // rsqrt · γ is [1, 1, 300] here, smaller than the output: run step by step.
            Case(
                shapes: [
                    "x": [3, 40, 300], "mean": [3, 1, 300], "rsqrt": [1, 1, 300], "gamma": [1, 1, 1],
                    "beta": [1, 40, 1]
                ], nodes: layerNormTail, fusedOps: ["Elementwise"]),
            Case(
                shapes: ["x": [5, 7], "mean": [5, 1], "rsqrt": [5, 1], "gamma": [7], "beta": [7]], dtype: .int32,
                nodes: layerNormTail, fusedOps: ["Elementwise"]),
            Case(
                shapes: ["x": [4, 33]], nodes: [("Mul", ["x", "x"], "square"), ("Div", ["square", "x"], "y")],
                fusedOps: ["Elementwise"])
        ]
        for (number, c) in cases.enumerated() {
            func model(unfused: Bool) -> Model {
                var g = GraphBuilder()
                for (name, shape) in c.shapes.sorted(by: { $0.key < $1.key }) { g.input(name, shape, dtype: c.dtype) }
                for (op, inputs, output) in c.nodes { g.node(op, inputs, [output]) }
                g.output("y")
                if unfused { for (_, _, output) in c.nodes where output != "y" { g.output(output) } }
                return g.model
            }
            XCTAssertEqual(
                rewritten(model(unfused: false)) { $0.fuseElementwiseChains() }, c.fusedOps, "case \(number)")
            XCTAssertEqual(rewritten(model(unfused: true)) { $0.fuseElementwiseChains() }.count, c.nodes.count)
            var feeds: [String: Tensor] = [:]
            for (index, (name, shape)) in c.shapes.sorted(by: { $0.key < $1.key }).enumerated() {
                let values = randomFloats(shape.reduce(1, *), seed: UInt64(40 + index)).map { $0 * 4 + 0.5 }
                feeds[name] =
                    c.dtype == .int32
                    ? Tensor(shape: shape, values: values.map { Int32($0 * 10) + 1 })
                    : Tensor(shape: shape, values: values)
            }
            let session = { (m: Model) in try InferenceSession(model: m, options: .init(threads: 2)).run(feeds)["y"]! }
            let fused = try session(model(unfused: false)), spelled = try session(model(unfused: true))
            XCTAssertEqual(fused.shape, spelled.shape, "case \(number)")
            XCTAssertEqual(fused.dtype, spelled.dtype, "case \(number)")
            XCTAssertTrue(fused.isBitwiseEqual(to: spelled), "case \(number)")
        }
    }

    func testReductionsOverMiddleAxesMatchTheDefinition() throws {
        let x = randomTensor([3, 5, 4, 6], seed: 5)
        let v = x.floatValues()
        for (op, axes) in [("ReduceSum", [1]), ("ReduceMean", [1, 2]), ("ReduceSumSquare", [0, 1])] {
            var g = GraphBuilder()
            g.input("x", [3, 5, 4, 6])
            g.constant("axes", Tensor.int64(axes))
            g.node(op, ["x", "axes"], ["y"], [("keepdims", .int(0))])
            g.opset = 18
            g.output("y")
            let y = try InferenceSession(model: g.model).run(["x": x])["y"]!
            let kept = (0..<4).filter { !axes.contains($0) }
            XCTAssertEqual(y.shape, kept.map { x.shape[$0] }, op)
            var expected = [Double](repeating: 0, count: y.elementCount)
            for a in 0..<3 {
                for b in 0..<5 {
                    for c in 0..<4 {
                        for d in 0..<6 {
                            let index = [a, b, c, d], value = Double(v[((a * 5 + b) * 4 + c) * 6 + d])
                            let out = kept.reduce(0) { $0 * x.shape[$1] + index[$1] }
                            expected[out] += op == "ReduceSumSquare" ? value * value : value
                        }
                    }
                }
            }
            if op == "ReduceMean" { expected = expected.map { $0 / 20 } }
            XCTAssertLessThanOrEqual(relativeError(y.floatValues(), expected.map { Float($0) }), 1e-6, op)
        }
    }
}

/// Transposes through the tiled copy (the output's last axis is not the input's contiguous one),
/// with size-1 axes and sizes that are not multiples of the tile, against index arithmetic.
final class TiledTransposeTests: XCTestCase {
    func testTransposesMatchTheDefinition() throws {
        let cases: [([Int], [Int])] = [
            ([3, 37, 70, 1], [0, 2, 1, 3]), ([2, 1, 5, 3, 130], [4, 1, 3, 0, 2]), ([17, 200], [1, 0]),
            ([2, 3, 4, 5], [3, 2, 1, 0]), ([4, 1, 1, 9], [3, 1, 2, 0]), ([2, 50, 3, 4, 16], [2, 0, 3, 1, 4])
        ]
        for (shape, perm) in cases {
            let x = randomTensor(shape, seed: UInt64(shape.reduce(0, +)))
            var g = GraphBuilder()
            g.input("x", shape)
            g.node("Transpose", ["x"], ["y"], [("perm", .ints(perm))])
            g.output("y")
            let y = try InferenceSession(model: g.model, options: .init(threads: 2)).run(["x": x])["y"]!
            let outShape = perm.map { shape[$0] }
            XCTAssertEqual(y.shape, outShape)
            let inStrides = contiguousStrides(shape), values = x.floatValues(), result = y.floatValues()
            var expected = [Float](repeating: 0, count: values.count)
            for index in 0..<values.count {
                var rest = index, offset = 0
                for axis in stride(from: outShape.count - 1, through: 0, by: -1) {
                    offset += (rest % outShape[axis]) * inStrides[perm[axis]]
                    rest /= outShape[axis]
                }
                expected[index] = values[offset]
            }
            XCTAssertEqual(result, expected, "\(shape) \(perm)")
        }
    }
}

/// A ViT's q/k/v split: Transpose then scalar Gathers on axis 0 become strided copies from the
/// Transpose's input, with the very values of the two-step form; any other reader keeps it.
final class TransposeGatherFusionTests: XCTestCase {
    private func model(indices: [Tensor], axis: Int = 0, keepTransposed: Bool = false) -> Model {
        var g = GraphBuilder()
        g.input("x", [2, 5, 3, 4, 6])
        g.node("Transpose", ["x"], ["t"], [("perm", .ints([2, 0, 3, 1, 4]))])
        for (k, index) in indices.enumerated() {
            g.constant("i\(k)", index)
            g.node("Gather", ["t", "i\(k)"], ["y\(k)"], [("axis", .int(axis))])
            g.output("y\(k)")
        }
        if keepTransposed { g.output("t") }
        return g.model
    }

    private func ops(_ model: Model) -> [String] {
        var graph = WorkingGraph(model: model, required: [])
        graph.fuseTransposeIntoGathers()
        return graph.entries.map(\.node.opType)
    }

    func testScalarGathersReadTheUntransposedInput() throws {
        let indices = [Tensor(scalar: Int64(0)), Tensor(scalar: Int64(1)), Tensor(scalar: Int64(-1))]
        XCTAssertEqual(ops(model(indices: indices)), ["TransposedGather", "TransposedGather", "TransposedGather"])
        XCTAssertEqual(ops(model(indices: indices, keepTransposed: true)).first, "Transpose")
        XCTAssertEqual(ops(model(indices: [Tensor.int64([1])])).first, "Transpose")
        XCTAssertEqual(ops(model(indices: indices, axis: 1)).first, "Transpose")
        let x = randomTensor([2, 5, 3, 4, 6], seed: 61)
        let fused = try InferenceSession(model: model(indices: indices)).run(["x": x])
        let spelled = try InferenceSession(model: model(indices: indices, keepTransposed: true)).run(["x": x])
        for k in 0..<3 {
            XCTAssertEqual(fused["y\(k)"]?.shape, [2, 4, 5, 6])
            XCTAssertEqual(fused["y\(k)"]?.floatValues(), spelled["y\(k)"]?.floatValues())
        }
        XCTAssertNotEqual(fused["y0"]?.floatValues(), fused["y1"]?.floatValues())
    }
}
