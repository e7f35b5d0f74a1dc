/// The input-side projection of DESIGN §4 on one `O × d` weight acting as `W·x`:
/// `W_new = W Pᵀ = W − W (I − M_r) M_f`, with `P = I − (M_f − M_f M_r)`.
///
/// The d × d projectors are never formed: `W (I − M_r) = W − (W U_r) Λ_r U_rᵀ`, then
/// `(·) M_f = ((·) U_f) Λ_f U_fᵀ`, four products of `O × d × k` where `k` counts the eigen-directions
/// whose scale reaches `negligibleScale` (the rest move the result by less than that, relatively).
enum InputProjection {
    static let negligibleScale = 1e-12

    /// Returns the projected copy of `weight` (row-major `outputs × d`).
    static func apply(
        to weight: [Double], outputs: Int, retain: any InputSpace, alphaRetain: Double,
        forget: any InputSpace, alphaForget: Double
    ) throws -> [Double] {
        let d = retain.dimension
        precondition(forget.dimension == d && weight.count == outputs * d)
        guard outputs > 0, d > 0 else { return weight }

        // R = W − W M_r, then W_new = W − R M_f.
        var residual = weight
        try retain.subtractProjection(
            of: weight, outputs: outputs, alpha: alphaRetain, threshold: negligibleScale, from: &residual)
        var result = weight
        try forget.subtractProjection(
            of: residual, outputs: outputs, alpha: alphaForget, threshold: negligibleScale, from: &result)
        return result
    }
}

/// One side's statistics as the projection uses them: `W ↦ W M` for that side's `M` at a given α.
/// `FeatureSpace` decomposes once for any number of α; `ResolventSpace` solves for one α.
protocol InputSpace: Sendable {
    var dimension: Int { get }
    /// `s_i`, ascending; empty when the space was never decomposed.
    var energies: [Double] { get }
    /// `result −= W M` for `W` of `outputs × d`, ignoring directions whose scale stays under `threshold`.
    func subtractProjection(
        of w: [Double], outputs: Int, alpha: Double, threshold: Double, from result: inout [Double]) throws
}
