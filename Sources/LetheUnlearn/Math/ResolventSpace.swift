/// One side's statistics applied at a single α without an eigen-decomposition.
///
/// `λ(s) = α·s / ((α − 1)·s + 1)` applied to the eigenvalues of `G̃ = G / tr G` is the matrix function
/// `M = α·G̃·((α − 1)·G̃ + I)⁻¹` (DESIGN §4), so `W M` needs one Cholesky factorisation of
/// `K = (α − 1)·G̃ + I` (≈ d³/3 flops) where `dsyevd` with vectors needs ≈ 9·d³ and a `d × d` basis.
/// `K`'s eigenvalues lie in `[min(1, α), max(1, α)]`, so the factorisation is well conditioned for
/// every α the method uses. This serves runs that apply one α pair; the α search keeps
/// `FeatureSpace`, whose one decomposition serves every grid point.
struct ResolventSpace: InputSpace {
    let dimension: Int
    /// `G` (row-major `d × d`), or for a space kept as rows (fewer rows than dimensions) `X`
    /// (`rowCount × d`), through which `W M = (α/t)·W Xᵀ (c·X Xᵀ + I)⁻¹ X` with `c = (α − 1)/t`
    /// (the push-through identity), an `n × n` system.
    private let gram: [Double]
    private let rows: [Double]
    private let rowCount: Int
    /// `X Xᵀ` for a space kept as rows.
    private let rowGram: [Double]
    /// `t = tr G`.
    private let trace: Double
    /// A resolvent has no spectrum; the report leaves it out, as for the erasure method.
    var energies: [Double] { [] }

    init(gram: [Double], dimension: Int) throws {
        precondition(gram.count == dimension * dimension)
        guard gram.allSatisfy(\.isFinite) else { throw NumericalError("statistics matrix holds non-finite values") }
        self.dimension = dimension
        self.gram = gram
        self.rows = []
        self.rowCount = 0
        self.rowGram = []
        self.trace = (0..<dimension).reduce(0) { $0 + gram[$1 * dimension + $1] }
    }

    init(rows: [Float], count n: Int, dimension d: Int) throws {
        precondition(rows.count == n * d)
        let x = rows.map(Double.init)
        guard x.allSatisfy(\.isFinite) else { throw NumericalError("statistics rows hold non-finite values") }
        let k = x.withUnsafeBufferPointer { LinearAlgebra.rowGram($0.baseAddress!, rows: n, dimension: d) }
        self.dimension = d
        self.gram = []
        self.rows = x
        self.rowCount = n
        self.rowGram = k
        self.trace = (0..<n).reduce(0) { $0 + k[$1 * n + $1] }
    }

    /// `result −= W M` for `W` of `outputs × d`. `threshold` is the eigen path's cut-off for
    /// negligible scales; here every direction counts, which differs by less than that.
    func subtractProjection(
        of w: [Double], outputs o: Int, alpha: Double, threshold: Double, from result: inout [Double]
    ) throws {
        guard o > 0, trace > 0, alpha > 0 else { return }
        let d = dimension
        let c = (alpha - 1) / trace
        if rows.isEmpty {
            try Self.subtract(gram: gram, trace: trace, dimension: d, of: w, outputs: o, alpha: alpha, from: &result)
        } else {
            // W M = (α/t) ((c X Xᵀ + I)⁻¹ X Wᵀ)ᵀ X.
            let n = rowCount
            var xw = [Double](repeating: 0, count: n * o)
            LinearAlgebra.multiply(rows, w, transposeB: true, into: &xw, m: n, n: o, k: d, alpha: alpha / trace)
            let solved = try LinearAlgebra.solvePositiveDefinite(
                shifted(rowGram, by: c, size: n), dimension: n, xw, columns: o)
            LinearAlgebra.multiply(
                solved, transposeA: true, rows, into: &result, m: o, n: d, k: n, alpha: -1, beta: 1)
        }
    }

    /// `result −= W M` straight from `G` (row-major `d × d`), for a caller that applies each matrix
    /// once: handed over uniquely, `G` itself becomes `K`, where a space would copy it (75 MB for one
    /// of ViT-B/16's 3,072-wide layers, at the peak of its run).
    static func subtractProjection(
        gram: consuming [Double], dimension d: Int, of w: [Double], outputs o: Int, alpha: Double,
        from result: inout [Double]
    ) throws {
        precondition(gram.count == d * d)
        guard gram.allSatisfy(\.isFinite) else { throw NumericalError("statistics matrix holds non-finite values") }
        let trace = (0..<d).reduce(0) { $0 + gram[$1 * d + $1] }
        guard o > 0, trace > 0, alpha > 0 else { return }
        try subtract(gram: gram, trace: trace, dimension: d, of: w, outputs: o, alpha: alpha, from: &result)
    }

    /// The Gram path. With `c = (α − 1)/t` and `K = c·G + I`, `G K⁻¹ = (I − K⁻¹)/c`, so
    /// `W M = (α/t) W G K⁻¹ = (α/(α − 1)) (W − W K⁻¹)`: one solve `K X = Wᵀ` (K formed in `gram`'s
    /// buffer, copied only when the caller still holds it) and no `G Wᵀ` product, which took a third
    /// of the flops (ViT-B/16's 3,072-wide layers: 14.5 GFLOP of 39 per side). The subtraction is
    /// float64 rounding times `α/(α − 1)`; within 0.01 of α = 1, where that factor passes 100, the
    /// solve takes `(α/t) G Wᵀ` as its right-hand side instead.
    private static func subtract(
        gram: consuming [Double], trace: Double, dimension d: Int, of w: [Double], outputs o: Int, alpha: Double,
        from result: inout [Double]
    ) throws {
        let nearOne = abs(alpha - 1) < 0.01
        var rightHand = [Double](repeating: 0, count: d * o)
        if nearOne {
            LinearAlgebra.multiply(gram, w, transposeB: true, into: &rightHand, m: d, n: o, k: d, alpha: alpha / trace)
        } else {
            for i in 0..<o { for j in 0..<d { rightHand[j * o + i] = w[i * d + j] } }
        }
        var k = consume gram
        let c = (alpha - 1) / trace
        k.withUnsafeMutableBufferPointer { k in
            for i in 0..<k.count { k[i] *= c }
            for i in 0..<d { k[i * d + i] += 1 }
        }
        let solved = try LinearAlgebra.solvePositiveDefinite(k, dimension: d, rightHand, columns: o)
        if nearOne {
            for i in 0..<o { for j in 0..<d { result[i * d + j] -= solved[j * o + i] } }
        } else {
            let factor = alpha / (alpha - 1)
            for i in 0..<o { for j in 0..<d { result[i * d + j] -= factor * (w[i * d + j] - solved[j * o + i]) } }
        }
    }

    /// `c·A + I`.
    private func shifted(_ a: [Double], by c: Double, size: Int) -> [Double] {
        var k = a
        for i in 0..<k.count { k[i] *= c }
        for i in 0..<size { k[i * size + i] += 1 }
        return k
    }
}
