/// The eigen-basis of one layer's (or conv group's) input statistics `G = U diag(σ²) Uᵀ`.
///
/// Computed once per statistics matrix; every α then only recomputes the scales `λ`
/// (DESIGN §4), which is what makes the α search cheap.
public struct FeatureSpace: Sendable {
    public let dimension: Int
    /// Eigenvectors held: `dimension`, or fewer when the space came from fewer rows than dimensions
    /// (the remaining eigenvalues are exactly zero and contribute nothing to `M`).
    public let rank: Int
    /// Column `j` (row-major `d × rank`) is the eigenvector of `energies[j]`.
    let vectors: [Double]
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
        var u = [Double](repeating: 0, count: d * kept.count)
        if !kept.isEmpty {
            x.withUnsafeBufferPointer { xp in
                scaled.withUnsafeBufferPointer { sp in
                    u.withUnsafeMutableBufferPointer { up in
                        LinearAlgebra.multiply(xp.baseAddress!, transposeA: true, sp.baseAddress!, into: up.baseAddress!,
                                               m: d, n: kept.count, k: n)
                    }
                }
            }
        }
        self.dimension = d
        self.rank = kept.count
        self.vectors = u
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
        var scaled = vectors
        for i in 0..<d { for j in 0..<r { scaled[i * r + j] *= lambda[j] } }
        var m = [Double](repeating: 0, count: d * d)
        guard r > 0 else { return m }
        scaled.withUnsafeBufferPointer { s in
            vectors.withUnsafeBufferPointer { u in
                m.withUnsafeMutableBufferPointer { out in
                    LinearAlgebra.multiply(s.baseAddress!, u.baseAddress!, transposeB: true, into: out.baseAddress!, m: d, n: d, k: r)
                }
            }
        }
        return m
    }

    /// Eigen-directions whose scale is at least `threshold`, as a `d × k` row-major basis with each
    /// column multiplied by `columnWeight(λ)`, plus k. Directions below the threshold change the
    /// product by less than the threshold in operator norm.
    func weightedBasis(alpha: Double, threshold: Double, columnWeight: (Double) -> Double) -> (basis: [Double], plain: [Double], rank: Int) {
        let d = dimension, r = rank
        let lambda = scales(alpha: alpha)
        let kept = (0..<r).filter { lambda[$0] >= threshold }
        let k = kept.count
        var basis = [Double](repeating: 0, count: d * k)
        var plain = [Double](repeating: 0, count: d * k)
        for (column, j) in kept.enumerated() {
            let weight = columnWeight(lambda[j])
            for i in 0..<d {
                plain[i * k + column] = vectors[i * r + j]
                basis[i * k + column] = vectors[i * r + j] * weight
            }
        }
        return (basis, plain, k)
    }
}
