/// The input-side projection of DESIGN §4 on one `O × d` weight acting as `W·x`:
/// `W_new = W Pᵀ = W − W (I − M_r) M_f`, with `P = I − (M_f − M_f M_r)`.
///
/// The d × d projectors are never formed: `W (I − M_r) = W − (W U_r) Λ_r U_rᵀ`, then
/// `(·) M_f = ((·) U_f) Λ_f U_fᵀ`, four products of `O × d × k` where `k` counts the eigen-directions
/// whose scale reaches `negligibleScale` (the rest move the result by less than that, relatively).
enum InputProjection {
    static let negligibleScale = 1e-12

    /// Returns the projected copy of `weight` (row-major `outputs × d`).
    static func apply(to weight: [Double], outputs: Int, retain: FeatureSpace, alphaRetain: Double,
                      forget: FeatureSpace, alphaForget: Double) -> [Double] {
        let d = retain.dimension
        precondition(forget.dimension == d && weight.count == outputs * d)
        guard outputs > 0, d > 0 else { return weight }

        // R = W − (W U_r) Λ_r U_rᵀ
        var residual = weight
        let r = retain.weightedBasis(alpha: alphaRetain, threshold: negligibleScale) { $0 }
        if r.rank > 0 {
            var wu = [Double](repeating: 0, count: outputs * r.rank)
            multiply(weight, r.plain, into: &wu, m: outputs, n: r.rank, k: d)
            multiply(wu, r.basis, transposeB: true, into: &residual, m: outputs, n: d, k: r.rank, alpha: -1, beta: 1)
        }
        // W_new = W − (R U_f) Λ_f U_fᵀ
        var result = weight
        let f = forget.weightedBasis(alpha: alphaForget, threshold: negligibleScale) { $0 }
        if f.rank > 0 {
            var ru = [Double](repeating: 0, count: outputs * f.rank)
            multiply(residual, f.plain, into: &ru, m: outputs, n: f.rank, k: d)
            multiply(ru, f.basis, transposeB: true, into: &result, m: outputs, n: d, k: f.rank, alpha: -1, beta: 1)
        }
        return result
    }

    private static func multiply(_ a: [Double], _ b: [Double], transposeB: Bool = false, into c: inout [Double],
                                 m: Int, n: Int, k: Int, alpha: Double = 1, beta: Double = 0) {
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                c.withUnsafeMutableBufferPointer { cp in
                    LinearAlgebra.multiply(ap.baseAddress!, bp.baseAddress!, transposeB: transposeB, into: cp.baseAddress!,
                                           m: m, n: n, k: k, alpha: alpha, beta: beta)
                }
            }
        }
    }
}
