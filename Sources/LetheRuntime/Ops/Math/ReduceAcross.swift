import LetheCore

extension ReduceKernel {
    /// Sums (or mean, or sum of squares) of float32 `x` (or of its squares rounded to float32, with
    /// `squaringFirst`) over the axes `first..<last`, which are
    /// followed by kept axes: viewed as [outer, length, inner], `out[o, i] = Σ_r x[o, r, i]`.
    /// Each output is accumulated in double in the same order r = 0, 1, … as the permute-then-
    /// reduce path, so the results are identical, but without the permuted copy and with the inner
    /// axis in the vector lanes (magika's LayerNorm reduces its middle axis, 512 × 256 a sample).
    static func reduceAcross(
        _ op: Op, _ x: UnsafePointer<Float>, outer: Int, length: Int, inner: Int,
        into out: UnsafeMutablePointer<Float>, squaringFirst: Bool = false, threads: Int
    ) {
        let block = 512
        let blocks = (inner + block - 1) / block
        Parallel.forEach(outer * blocks, threads: threads, grain: max(1, 16384 / max(1, length * min(inner, block)))) {
            range in
            withUnsafeTemporaryAllocation(of: Double.self, capacity: block) { buffer in
                let sums = buffer.baseAddress!
                for task in range {
                    let o = task / blocks, start = (task % blocks) * block
                    let width = min(block, inner - start)
                    for i in 0..<width { sums[i] = 0 }
                    for r in 0..<length {
                        let row = x + (o * length + r) * inner + start
                        if squaringFirst {
                            // Rounded to float first, as the folded Mul(x, x) stored it.
                            for i in 0..<width { sums[i] += Double(row[i] * row[i]) }
                        } else if op == .ReduceSumSquare {
                            for i in 0..<width { sums[i] += Double(row[i]) * Double(row[i]) }
                        } else {
                            for i in 0..<width { sums[i] += Double(row[i]) }
                        }
                    }
                    let target = out + o * inner + start
                    if op == .ReduceMean {
                        for i in 0..<width { target[i] = Float(sums[i] / Double(length)) }
                    } else {
                        for i in 0..<width { target[i] = Float(sums[i]) }
                    }
                }
            }
        }
    }
}
