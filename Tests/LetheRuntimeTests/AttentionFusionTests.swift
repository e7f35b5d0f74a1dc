import LetheCore
import LetheIR
import XCTest
@testable import LetheRuntime

/// Scaled dot-product attention as exporters spell it becomes one Attention node whose outputs
/// match the unfused graph's (kept unfused by exposing the softmax), and stays unfused whenever a
/// piece of it is read elsewhere or is not what the kernel computes.
final class AttentionFusionTests: XCTestCase {
    enum Scale { case none, divide(Float), multiplyLeft(Float), divideByInput }

    struct Pattern {
        var scale = Scale.divide(4)
        var softmaxAxis = -1
        var outputPermutation: [Int]? = [0, 2, 1, 3]
        /// Also a graph output: the value's readers outside the pattern keep it.
        var exposed: String? = nil
        /// The separate model's queries arrive as this permutation of [B, H, S, D] and are
        /// transposed back by the graph.
        var queryPermutation: [Int]? = nil
    }

    private let tokens = 5, heads = 3, depth = 4

    /// A ViT's attention over a packed qkv projection: Reshape to [B, S, 3, H, D], Transpose to
    /// [3, B, H, S, D], Gather q, k, v, Transpose k, then the scaled product and the head merge.
    private func packedModel(_ pattern: Pattern) -> Model {
        var g = GraphBuilder()
        g.input("x", [nil, tokens, 3 * heads * depth] as [Int?])
        g.constant("shape", Tensor.int64([0, tokens, 3, heads, depth]))
        g.node("Reshape", ["x", "shape"], ["r"])
        g.node("Transpose", ["r"], ["t"], [("perm", .ints([2, 0, 3, 1, 4]))])
        for (i, name) in ["q", "k", "v"].enumerated() {
            g.constant("i\(i)", Tensor(scalar: Int64(i)))
            g.node("Gather", ["t", "i\(i)"], [name], [("axis", .int(0))])
        }
        g.node("Transpose", ["k"], ["kt"], [("perm", .ints([0, 1, 3, 2]))])
        attend(&g, "q", "kt", "v", pattern)
        return g.model
    }

    /// Separate q, k, v inputs already split into heads, k transposed by the graph, v shared by
    /// every batch (broadcast).
    private func separateModel(_ pattern: Pattern) -> Model {
        var g = GraphBuilder()
        var q = "q"
        if let perm = pattern.queryPermutation {
            g.input("q", [nil, nil, nil, nil])
            g.node("Transpose", ["q"], ["qt"], [("perm", .ints(perm))])
            q = "qt"
        } else {
            g.input("q", [nil, heads, tokens, depth] as [Int?])
        }
        g.input("k", [nil, heads, tokens, depth] as [Int?])
        g.input("v", [heads, tokens, depth])
        g.node("Transpose", ["k"], ["kt"], [("perm", .ints([0, 1, 3, 2]))])
        attend(&g, q, "kt", "v", pattern)
        return g.model
    }

    private func attend(_ g: inout GraphBuilder, _ q: String, _ kt: String, _ v: String, _ pattern: Pattern) {
        g.node("MatMul", [q, kt], ["s"])
        var scores = "s"
        switch pattern.scale {
        case .none: break
        case .divide(let c):
            g.constant("c", Tensor(scalar: c))
            g.node("Div", ["s", "c"], ["scaled"])
            scores = "scaled"
        case .multiplyLeft(let c):
            g.constant("c", Tensor(shape: [1], values: [c]))
            g.node("Mul", ["c", "s"], ["scaled"])
            scores = "scaled"
        case .divideByInput:
            g.input("c", [])
            g.node("Div", ["s", "c"], ["scaled"])
            scores = "scaled"
        }
        g.node("Softmax", [scores], ["p"], [("axis", .int(pattern.softmaxAxis))])
        g.node("MatMul", ["p", v], ["o"])
        if let perm = pattern.outputPermutation {
            g.node("Transpose", ["o"], ["y"], [("perm", .ints(perm))])
        } else {
            g.node("Identity", ["o"], ["y"])
        }
        g.output("y")
        if let exposed = pattern.exposed { g.output(exposed) }
    }

    private func ops(_ model: Model) -> [String] {
        var graph = WorkingGraph(model: model, required: [])
        graph.fuseTransposeIntoGathers()
        graph.fuseAttention()
        return graph.entries.map(\.node.opType)
    }

    private func feeds(packed: Bool, batch: Int, seed: UInt64, queryPermutation: [Int]?) -> [String: Tensor] {
        if packed { return ["x": randomTensor([batch, tokens, 3 * heads * depth], seed: seed)] }
        // The permutations tested are their own inverses.
        let queryShape = (queryPermutation ?? [0, 1, 2, 3]).map { [batch, heads, tokens, depth][$0] }
        return [
            "q": randomTensor(queryShape, seed: seed),
            "k": randomTensor([batch, heads, tokens, depth], seed: seed + 1),
            "v": randomTensor([heads, tokens, depth], seed: seed + 2),
            "c": Tensor(scalar: Float(3))
        ]
    }

    /// The fused model's `y` against the same pattern with its softmax exposed (so unfused).
    private func assertMatchesUnfused(
        _ pattern: Pattern, packed: Bool, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        var spelled = pattern
        spelled.exposed = "p"
        let build = packed ? packedModel : separateModel
        XCTAssertFalse(ops(build(spelled)).contains("Attention"), file: file, line: line)
        for batch in [1, 3, 8] {
            for threads in [1, 2] {
                var inputs = feeds(
                    packed: packed, batch: batch, seed: UInt64(batch * 7 + threads),
                    queryPermutation: pattern.queryPermutation)
                if case .divideByInput = pattern.scale {} else { inputs["c"] = nil }
                let options = SessionOptions(threads: threads)
                let fused = try InferenceSession(model: build(pattern), options: options).run(inputs)["y"]!
                let reference = try InferenceSession(model: build(spelled), options: options).run(inputs)["y"]!
                assertClose(
                    fused, reference.floatValues(), shape: reference.shape, tolerance: 1e-6, file: file, line: line)
            }
        }
    }

    func testPackedQKVBecomesOneNodeReadingTheProjection() throws {
        XCTAssertEqual(ops(packedModel(Pattern())), ["Reshape", "Attention"])
        try assertMatchesUnfused(Pattern(), packed: true)
        try assertMatchesUnfused(Pattern(scale: .multiplyLeft(0.5)), packed: true)
        try assertMatchesUnfused(Pattern(scale: .none, outputPermutation: nil), packed: true)
    }

    func testSeparateHeadsWithBroadcastValues() throws {
        XCTAssertEqual(ops(separateModel(Pattern())), ["Attention"])
        try assertMatchesUnfused(Pattern(), packed: false)
        try assertMatchesUnfused(Pattern(scale: .none), packed: false)
    }

    func testQueriesWithNoContiguousAxisArePackedPerHead() throws {
        // [D, H, S, B] read as [B, H, S, D]: neither matrix axis has stride 1, so BLAS cannot read it.
        let pattern = Pattern(queryPermutation: [3, 1, 2, 0])
        XCTAssertEqual(ops(separateModel(pattern)), ["Attention"])
        try assertMatchesUnfused(pattern, packed: false)
    }

    func testVectorOperandsTakeTheUnfusedKernels() throws {
        // A 1-D query or key makes MatMul drop an axis, so the softmax runs along another one.
        for (queryShape, keyShape) in [([4], [5, 4]), ([5, 4], [4])] {
            func model(exposed: Bool) -> Model {
                var g = GraphBuilder()
                g.input("q", queryShape)
                g.input("k", keyShape)
                g.input("v", [5, 3])
                g.constant("c", Tensor(scalar: Float(2)))
                if keyShape.count == 2 {
                    g.node("Transpose", ["k"], ["kt"], [("perm", .ints([1, 0]))])
                } else {
                    g.node("Identity", ["k"], ["kt"])
                }
                g.node("MatMul", ["q", "kt"], ["s"])
                g.node("Div", ["s", "c"], ["scaled"])
                g.node("Softmax", ["scaled"], ["p"], [("axis", .int(-1))])
                g.node("MatMul", ["p", "v"], ["y"])
                g.output("y")
                if exposed { g.output("p") }
                return g.model
            }
            XCTAssertTrue(ops(model(exposed: false)).contains("Attention"))
            let feeds = [
                "q": randomTensor(queryShape, seed: 71), "k": randomTensor(keyShape, seed: 72),
                "v": randomTensor([5, 3], seed: 73)
            ]
            let fused = try InferenceSession(model: model(exposed: false)).run(feeds)["y"]!
            let reference = try InferenceSession(model: model(exposed: true)).run(feeds)["y"]!
            assertClose(fused, reference.floatValues(), shape: reference.shape, tolerance: 1e-6)
        }
    }

    func testOutputTransposeMovingTheLastAxisStaysASeparateNode() throws {
        let pattern = Pattern(outputPermutation: [0, 1, 3, 2])
        XCTAssertEqual(ops(separateModel(pattern)), ["Attention", "Transpose"])
        try assertMatchesUnfused(pattern, packed: false)
        try assertMatchesUnfused(pattern, packed: true)
    }

    func testValuesReadElsewhereKeepTheirNodes() throws {
        // The transposed keys are an output too: the Transpose stays and the node reads its result.
        let keys = Pattern(exposed: "kt")
        XCTAssertEqual(ops(packedModel(keys)), ["Reshape", "TransposedGather", "Transpose", "Attention"])
        try assertMatchesUnfused(keys, packed: true)
        // Scores, scaled scores or probabilities read elsewhere leave the pattern unfused.
        for exposed in ["s", "scaled", "p"] {
            XCTAssertFalse(ops(packedModel(Pattern(exposed: exposed))).contains("Attention"), exposed)
        }
        // The product read elsewhere is still produced, so the head merge stays a Transpose of it.
        XCTAssertEqual(ops(packedModel(Pattern(exposed: "o"))), ["Reshape", "Attention", "Transpose"])
    }

    func testScalesAndAxesTheKernelDoesNotComputeStayUnfused() throws {
        XCTAssertFalse(ops(separateModel(Pattern(scale: .divideByInput))).contains("Attention"))
        XCTAssertFalse(ops(separateModel(Pattern(softmaxAxis: 2))).contains("Attention"))
        var g = GraphBuilder()
        g.input("q", [2, 3, 3])
        g.constant("c", Tensor(shape: [1, 1, 1, 1], values: [2]))
        g.node("MatMul", ["q", "q"], ["s"])
        g.node("Mul", ["s", "c"], ["scaled"])
        g.node("Softmax", ["scaled"], ["p"], [("axis", .int(-1))])
        g.node("MatMul", ["p", "q"], ["y"])
        g.output("y")
        // A rank-4 "scalar" would raise the scores' rank: the Mul stays, so the pattern does.
        XCTAssertFalse(ops(g.model).contains("Attention"))
    }

    func testViewsComposeTransposesAndAGather() throws {
        XCTAssertEqual(try AxisView(permutation: [2, 0, 1]).resolve([2, 3, 4]).shape, [4, 2, 3])
        let view = try AxisView(permutation: [2, 0, 3, 1, 4], index: -1).resolve([2, 5, 3, 4, 6])
        XCTAssertEqual(view.shape, [2, 4, 5, 6])
        XCTAssertEqual(view.strides, [360, 6, 72, 1])
        XCTAssertEqual(view.offset, 2 * 24)
        XCTAssertThrowsError(try AxisView(permutation: [1, 0]).resolve([2, 3, 4]))
        XCTAssertThrowsError(try AxisView(permutation: [0, 1], index: 2).resolve([2, 3]))
    }
}
