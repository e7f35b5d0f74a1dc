/// The eigen-basis of one layer's (or conv group's) input statistics `G = U diag(σ²) Uᵀ`.
///
/// Computed once per statistics matrix; every α then only recomputes the scales `λ`
/// (DESIGN §4), which is what makes the α search cheap.
public struct FeatureSpace: Sendable {
    public let dimension: Int
    /// Column `j` (row-major `d × d`) is the eigenvector of `energies[j]`.
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
        self.vectors = vectors
        self.energies = total > 0 ? clamped.map { $0 / total } : clamped.map { _ in 0 }
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
        let d = dimension
        let lambda = scales(alpha: alpha)
        var scaled = vectors
        for i in 0..<d { for j in 0..<d { scaled[i * d + j] *= lambda[j] } }
        var m = [Double](repeating: 0, count: d * d)
        scaled.withUnsafeBufferPointer { s in
            vectors.withUnsafeBufferPointer { u in
                m.withUnsafeMutableBufferPointer { out in
                    LinearAlgebra.multiply(s.baseAddress!, u.baseAddress!, transposeB: true, into: out.baseAddress!, m: d, n: d, k: d)
                }
            }
        }
        return m
    }

    /// Eigen-directions whose scale is at least `threshold`, as a `d × k` row-major basis with each
    /// column multiplied by `columnWeight(λ)`, plus k. Directions below the threshold change the
    /// product by less than the threshold in operator norm.
    func weightedBasis(alpha: Double, threshold: Double, columnWeight: (Double) -> Double) -> (basis: [Double], plain: [Double], rank: Int) {
        let d = dimension
        let lambda = scales(alpha: alpha)
        let kept = (0..<d).filter { lambda[$0] >= threshold }
        let k = kept.count
        var basis = [Double](repeating: 0, count: d * k)
        var plain = [Double](repeating: 0, count: d * k)
        for (column, j) in kept.enumerated() {
            let weight = columnWeight(lambda[j])
            for i in 0..<d {
                plain[i * k + column] = vectors[i * d + j]
                basis[i * k + column] = vectors[i * d + j] * weight
            }
        }
        return (basis, plain, k)
    }
}
