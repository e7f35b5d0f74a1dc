/// The eigen-basis of one layer's (or conv group's) input statistics `G = U diag(σ²) Uᵀ`.
///
/// Computed once per statistics matrix; every α then only recomputes the scales `λ`
/// (DESIGN §4), which is what makes the α search cheap.
public struct FeatureSpace: InputSpace {
    public let dimension: Int
    /// Eigenvectors held: `dimension`, or fewer when the space came from fewer rows than dimensions
    /// (the remaining eigenvalues are exactly zero and contribute nothing to `M`).
    public let rank: Int
    /// Column `j` (row-major `d × rank`) is the eigenvector of `energies[j]`; empty for a space kept
    /// as rows, whose eigenvectors are `Xᵀ C` and never formed (see `init(rows:)`).
    let vectors: [Double]
    /// For a space from rows: `X` (`rowCount × d`) and `C = V Σ⁻¹` (`rowCount × rank`).
    private let rows: [Double]
    private let rowCount: Int
    private let coefficients: [Double]
    /// `s_i = σ_i² / Σ_j σ_j²`, ascending; rounding's tiny negative eigenvalues are clamped to 0.
    public let energies: [Double]

    /// Decomposes the symmetric matrix `gram` (`dimension × dimension`, row-major).
    public init(gram: [Double], dimension: Int) throws {
        precondition(gram.count == dimension * dimension)
        guard gram.allSatisfy(\.isFinite) else { throw NumericalError("statistics matrix holds non-finite values") }
        let (values, vectors) = try LinearAlgebra.symmetricEigen(gram, dimension: dimension)
        let clamped = values.map { max($0, 0) }
        let total = clamped.reduce(0, +)
        self.dimension = dimension
        self.rank = dimension
        self.vectors = vectors
        self.rows = []
        self.rowCount = 0
        self.coefficients = []
        self.energies = total > 0 ? clamped.map { $0 / total } : clamped.map { _ in 0 }
    }

    /// The same space from the rows themselves when there are fewer rows `n` than dimensions (a dense
    /// layer seeing one vector per image): `X Xᵀ = V Σ² Vᵀ` is only `n × n`, and `U = Xᵀ V Σ⁻¹`.
    /// `G = XᵀX` has the same non-zero eigenpairs, so this is the decomposition of `G` at a fraction
    /// of the cost.
    public init(rows: [Float], count n: Int, dimension d: Int) throws {
        precondition(rows.count == n * d)
        let x = rows.map(Double.init)
        let k = x.withUnsafeBufferPointer { LinearAlgebra.rowGram($0.baseAddress!, rows: n, dimension: d) }
        let (values, v) = try LinearAlgebra.symmetricEigen(k, dimension: n)
        let total = values.reduce(0) { $0 + max($1, 0) }
        // Directions whose σ² is at rounding level of the largest carry no energy worth a vector.
        let floor = (values.last ?? 0) * Double(n) * 1e-15
        let kept = (0..<n).filter { values[$0] > floor }
        var scaled = [Double](repeating: 0, count: n * kept.count)
        for (column, j) in kept.enumerated() {
            let inverse = 1 / values[j].squareRoot()
            for i in 0..<n { scaled[i * kept.count + column] = v[i * n + j] * inverse }
        }
        self.dimension = d
        self.rank = kept.count
        self.vectors = []
        self.rows = x
        self.rowCount = n
        self.coefficients = scaled
        self.energies = kept.map { total > 0 ? values[$0] / total : 0 }
    }

    /// `λ_i = α·s_i / ((α − 1)·s_i + 1)`: 0 ≤ λ_i ≤ 1, equal to `s_i` at α = 1 and tending to 1 on the
    /// support as α grows.
    public static func scale(energy s: Double, alpha: Double) -> Double {
        let denominator = (alpha - 1) * s + 1
        return denominator > 0 ? min(max(alpha * s / denominator, 0), 1) : 0
    }

    public func scales(alpha: Double) -> [Double] {
        energies.map { FeatureSpace.scale(energy: $0, alpha: alpha) }
    }

    /// `M = U diag(λ) Uᵀ` (row-major `d × d`); the projection never forms it, tests and reports do.
    public func projector(alpha: Double) -> [Double] {
        let d = dimension, r = rank
        let lambda = scales(alpha: alpha)
        let vectors = explicitVectors()
        var scaled = vectors
        for i in 0..<d { for j in 0..<r { scaled[i * r + j] *= lambda[j] } }
        var m = [Double](repeating: 0, count: d * d)
        guard r > 0 else { return m }
        scaled.withUnsafeBufferPointer { s in
            vectors.withUnsafeBufferPointer { u in
                m.withUnsafeMutableBufferPointer { out in
                    LinearAlgebra.multiply(
                        s.baseAddress!, u.baseAddress!, transposeB: true, into: out.baseAddress!, m: d, n: d, k: r)
                }
            }
        }
        return m
    }

    /// `U` (`d × rank`), forming `Xᵀ C` for a space kept as rows.
    func explicitVectors() -> [Double] {
        guard vectors.isEmpty, rank > 0 else { return vectors }
        var u = [Double](repeating: 0, count: dimension * rank)
        rows.withUnsafeBufferPointer { xp in
            coefficients.withUnsafeBufferPointer { cp in
                u.withUnsafeMutableBufferPointer { up in
                    LinearAlgebra.multiply(
                        xp.baseAddress!, transposeA: true, cp.baseAddress!, into: up.baseAddress!, m: dimension,
                        n: rank, k: rowCount)
                }
            }
        }
        return u
    }

    /// The directions whose scale `λ` reaches `threshold`, their scales, and a basis of them: `U_k`
    /// (`d × k`), or for a space kept as rows `C_k` (`n × k`, with `U_k = Xᵀ C_k`).
    private func kept(alpha: Double, threshold: Double) -> (scales: [Double], basis: [Double], k: Int) {
        let lambda = scales(alpha: alpha)
        let columns = (0..<rank).filter { lambda[$0] >= threshold }
        let k = columns.count
        let source = vectors.isEmpty ? coefficients : vectors
        let height = vectors.isEmpty ? rowCount : dimension
        var basis = [Double](repeating: 0, count: height * k)
        for (column, j) in columns.enumerated() { for i in 0..<height { basis[i * k + column] = source[i * rank + j] } }
        return (columns.map { lambda[$0] }, basis, k)
    }

    /// `W M = (W U_k) Λ_k U_kᵀ` subtracted from `result`: `result −= W M` for `W` of `outputs × d`.
    /// For a space kept as rows, `W U_k = (W Xᵀ) C_k` and `(·) U_kᵀ = ((·) C_kᵀ) X`, so nothing
    /// `d × rank` is formed.
    func subtractProjection(
        of w: [Double], outputs o: Int, alpha: Double, threshold: Double, from result: inout [Double]
    ) {
        let (lambda, basis, k) = kept(alpha: alpha, threshold: threshold)
        guard k > 0, o > 0 else { return }
        let d = dimension
        var coordinates = [Double](repeating: 0, count: o * k)
        if vectors.isEmpty {
            let n = rowCount
            var wx = [Double](repeating: 0, count: o * n)
            LinearAlgebra.multiply(w, rows, transposeB: true, into: &wx, m: o, n: n, k: d)
            LinearAlgebra.multiply(wx, basis, into: &coordinates, m: o, n: k, k: n)
            for i in 0..<o { for j in 0..<k { coordinates[i * k + j] *= lambda[j] } }
            var back = [Double](repeating: 0, count: o * n)
            LinearAlgebra.multiply(coordinates, basis, transposeB: true, into: &back, m: o, n: n, k: k)
            LinearAlgebra.multiply(back, rows, into: &result, m: o, n: d, k: n, alpha: -1, beta: 1)
        } else {
            LinearAlgebra.multiply(w, basis, into: &coordinates, m: o, n: k, k: d)
            for i in 0..<o { for j in 0..<k { coordinates[i * k + j] *= lambda[j] } }
            LinearAlgebra.multiply(
                coordinates, basis, transposeB: true, into: &result, m: o, n: d, k: k, alpha: -1, beta: 1)
        }
    }
}
