import LetheCore
#if canImport(Glibc)
import Glibc
#endif

/// ReduceSum/Mean/Max/Min/Prod/L1/L2/SumSquare/LogSum/LogSumExp; axes from the attribute (older
/// opsets) or the second input (ReduceSum ≥ 13, the rest ≥ 18).
struct ReduceKernel: Kernel {
    enum Op: String, Sendable {
        case ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd, ReduceL1, ReduceL2, ReduceSumSquare, ReduceLogSum,
            ReduceLogSumExp
    }
    let op: Op
    let attributeAxes: [Int]?
    let keepDims: Bool
    let noopWithEmptyAxes: Bool
    /// The input is squared first, in float32, as the `Mul(x, x)` folded into this node computed
    /// it (`WorkingGraph.fuseSquareIntoReduce`).
    let squaresFirst: Bool

    /// `op` and `squaresFirst` are for the fused forms, whose node names no ONNX reduction.
    init(_ request: KernelRequest, op: Op? = nil, squaresFirst: Bool = false) throws {
        guard let op = op ?? Op(rawValue: request.node.opType) else { throw Unsupported("not a reduction") }
        self.op = op
        self.squaresFirst = squaresFirst
        attributeAxes = try request.ints("axes")
        keepDims = try request.int("keepdims", 1) != 0
        noopWithEmptyAxes = try request.int("noop_with_empty_axes", 0) != 0
    }

    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        var x = try inputs.required(0)
        guard x.dtype.isNumeric else { throw RuntimeError("\(op.rawValue) of \(x.dtype)") }
        var axes = try inputs.optional(1).map { try $0.intValues() } ?? attributeAxes ?? []
        // Whether the folded square is still to be applied.
        var pendingSquare = squaresFirst
        if axes.isEmpty {
            if pendingSquare { x = try ArithmeticOp.mul.apply(x, x, context) }
            pendingSquare = false
            if noopWithEmptyAxes { return [x] }
            axes = Array(0..<x.rank)
        }
        let reduced = Set(try axes.map { try normalizeAxis($0, rank: x.rank) })
        let kept = (0..<x.rank).filter { !reduced.contains($0) }
        let shape = keepDims ? (0..<x.rank).map { reduced.contains($0) ? 1 : x.shape[$0] } : kept.map { x.shape[$0] }
        if x.dtype == .float32, [.ReduceSum, .ReduceMean, .ReduceSumSquare].contains(op),
            let first = reduced.min(), let last = reduced.max(), last - first + 1 == reduced.count, last < x.rank - 1
        {
            let y = try Tensor.uninitialized(.float32, shape)
            ReduceKernel.reduceAcross(
                op, x.floats, outer: x.shape[..<first].reduce(1, *), length: x.shape[first...last].reduce(1, *),
                inner: x.shape[(last + 1)...].reduce(1, *), into: y.mutableFloats, squaringFirst: pendingSquare,
                threads: context.threads)
            return [y]
        }
        // Elsewhere the square is its own pass, exactly the folded Mul.
        if pendingSquare { x = try ArithmeticOp.mul.apply(x, x, context) }
        let ordered = kept + reduced.sorted()
        let source = ordered == Array(0..<x.rank) ? x : try permute(x, ordered)
        let outer = kept.map { x.shape[$0] }.reduce(1, *)
        let inner = reduced.map { x.shape[$0] }.reduce(1, *)
        let values = source.dtype == .float32 ? source : source.asFloat32()
        var result = [Float](repeating: 0, count: outer)
        let px = values.floats, op = self.op
        result.withUnsafeMutableBufferPointer { out in
            let po = out.baseAddress!
            Parallel.forEach(outer, threads: context.threads, grain: max(1, 16384 / max(1, inner))) { range in
                for o in range { po[o] = ReduceKernel.reduce(op, px + o * inner, inner) }
            }
        }
        let floatResult = Tensor(shape: shape, values: result)
        return [x.dtype == .float32 ? floatResult : try castTensor(floatResult, to: x.dtype)]
    }

    static func reduce(_ op: Op, _ p: UnsafePointer<Float>, _ n: Int) -> Float {
        switch op {
        case .ReduceSum: var s: Double = 0; for i in 0..<n { s += Double(p[i]) }; return Float(s)
        case .ReduceMean: var s: Double = 0; for i in 0..<n { s += Double(p[i]) }; return Float(s / Double(n))
        case .ReduceMax: var m = -Float.infinity; for i in 0..<n where p[i] > m || p[i].isNaN { m = p[i] }; return m
        case .ReduceMin: var m = Float.infinity; for i in 0..<n where p[i] < m || p[i].isNaN { m = p[i] }; return m
        case .ReduceProd: var s: Double = 1; for i in 0..<n { s *= Double(p[i]) }; return Float(s)
        case .ReduceL1: var s: Double = 0; for i in 0..<n { s += Double(abs(p[i])) }; return Float(s)
        case .ReduceL2:
            var s: Double = 0; for i in 0..<n { s += Double(p[i]) * Double(p[i]) }; return Float(s.squareRoot())
        case .ReduceSumSquare: var s: Double = 0; for i in 0..<n { s += Double(p[i]) * Double(p[i]) }; return Float(s)
        case .ReduceLogSum: var s: Double = 0; for i in 0..<n { s += Double(p[i]) }; return Float(Glibc.log(s))
        case .ReduceLogSumExp:
            var m = -Float.infinity
            for i in 0..<n where p[i] > m { m = p[i] }
            if !m.isFinite { m = 0 }
            var s: Double = 0
            for i in 0..<n { s += Glibc.exp(Double(p[i] - m)) }
            return Float(Glibc.log(s)) + m
        }
    }
}

/// ArgMax and ArgMin along one axis, int64 indices.
struct ArgExtremumKernel: Kernel {
    let isMax: Bool
    let axis: Int
    let keepDims: Bool
    let selectLast: Bool

    init(_ request: KernelRequest) throws {
        isMax = request.node.opType == "ArgMax"
        axis = try request.int("axis", 0)
        keepDims = try request.int("keepdims", 1) != 0
        selectLast = try request.int("select_last_index", 0) != 0
    }

    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let values = x.dtype == .float32 ? x : x.asFloat32()
        let a = try normalizeAxis(axis, rank: x.rank)
        let outer = x.shape[..<a].reduce(1, *), length = x.shape[a], inner = x.shape[(a + 1)...].reduce(1, *)
        guard length > 0 else { throw RuntimeError("\(isMax ? "ArgMax" : "ArgMin") over an empty axis") }
        var result = [Int64](repeating: 0, count: outer * inner)
        let px = values.floats
        for o in 0..<outer {
            for i in 0..<inner {
                var best = px[o * length * inner + i], index = 0
                for j in 1..<max(1, length) {
                    let v = px[(o * length + j) * inner + i]
                    let better = isMax ? (selectLast ? v >= best : v > best) : (selectLast ? v <= best : v < best)
                    if better { best = v; index = j }
                }
                result[o * inner + i] = Int64(index)
            }
        }
        var shape = x.shape
        if keepDims { shape[a] = 1 } else { shape.remove(at: a) }
        return [Tensor(shape: shape, values: result)]
    }
}

/// Sums `tensor` (float32) over `axes`, dropping them.
func sumOver(_ tensor: Tensor, axes: [Int], threads: Int) throws -> Tensor {
    if axes.isEmpty { return tensor }
    let reduced = Set(axes)
    let kept = (0..<tensor.rank).filter { !reduced.contains($0) }
    let source = try permute(tensor, kept + reduced.sorted(), threads: threads)
    let outer = kept.map { tensor.shape[$0] }.reduce(1, *)
    let inner = reduced.map { tensor.shape[$0] }.reduce(1, *)
    let out = try Tensor.uninitialized(.float32, kept.map { tensor.shape[$0] })
    let px = source.floats, py = out.mutableFloats
    for o in 0..<outer { py[o] = ReduceKernel.reduce(.ReduceSum, px + o * inner, inner) }
    return out
}
