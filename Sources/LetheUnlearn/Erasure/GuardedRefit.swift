/// The erasure step of Lethe's default method on one layer (or conv group): the affine map closest to
/// the layer's own on the retain rows whose output no longer moves along the concept directions `D`:
///
/// ```
/// [Ŵ b̂] = argmin Σ_retain ‖[Ŵ b̂] x̃ − [W b] x̃‖²   subject to  Ŵ D = 0,     x̃ = [x; 1]
///       = [W b] (I − D̃ (D̃ᵀ G̃⁻¹ D̃)⁻¹ D̃ᵀ G̃⁻¹),        G̃ = Σ_retain x̃ x̃ᵀ / n (+ ridge),  D̃ = [D; 0]
/// ```
///
/// With `D = μ_forget − μ_retain` this is a linear guard in LEACE's sense (Belrose et al. 2023): the
/// layer's output has the same mean on forget and retain rows, so no linear probe of it beats a
/// constant at telling them apart; among all such guards it is the one that changes the retain
/// outputs least (LEACE minimises the change in the whitened input instead). It also returns the
/// retain distortion `tr(ΔW̃ G̃ ΔW̃ᵀ) / tr(W̃ G̃ W̃ᵀ)`: the share of the retain outputs' energy it moves.
///
/// Compensation: on a model whose earlier layers were erased, the layer's rows `x` are no longer the
/// original model's `x°`. Given `C̃ = Σ x̃° x̃ᵀ / n` over the same retain rows, the map matched is the
/// original model's output, `argmin Σ‖[Ŵ b̂] x̃ − [W b] x̃°‖²` under the same constraint: `W̃` above
/// becomes `W̃ C̃ G̃⁻¹`, so each layer makes up for what the erasures before it changed on the retain
/// rows (the distortion is then measured against that compensated map).
enum GuardedRefit {
    /// Relative ridge added to `G̃`'s diagonal (times its mean diagonal) so that directions the retain
    /// rows never visit stay solvable.
    static let defaultRidge = 1e-4

    /// `weight` is row-major `outputs × d`; `bias` has `outputs` values or is nil (then the map is
    /// refit as linear: `x̃ = x`). `gram` is `Σ x xᵀ` over the retain rows (`d × d`), `sum` is `Σ x`,
    /// `rows` their count; `directions` are the columns of `D`, each of `d` values.
    static func apply(
        weight: [Double], bias: [Double]?, outputs o: Int, dimension d: Int,
        gram: [Double], sum: [Double], rows n: Int, directions: [[Double]],
        ridge: Double = defaultRidge, compensating cross: CrossMoment? = nil
    ) throws -> (weight: [Double], bias: [Double]?, distortion: Double) {
        precondition(weight.count == o * d && gram.count == d * d && sum.count == d)
        let k = directions.count
        guard k > 0, n > 0, o > 0 else { return (weight, bias, 0) }
        let augmented = bias != nil
        let e = augmented ? d + 1 : d
        // G̃ / n, with the ridge.
        var g = [Double](repeating: 0, count: e * e)
        let scale = 1 / Double(n)
        for i in 0..<d {
            for j in 0..<d { g[i * e + j] = gram[i * d + j] * scale }
            if augmented {
                g[i * e + d] = sum[i] * scale
                g[d * e + i] = sum[i] * scale
            }
        }
        if augmented { g[d * e + d] = 1 }
        var trace = 0.0
        for i in 0..<e { trace += g[i * e + i] }
        let shift = ridge * max(trace / Double(e), .leastNormalMagnitude)
        for i in 0..<e { g[i * e + i] += shift }

        // D̃ (e × k), Y = G̃⁻¹ D̃, K = D̃ᵀ Y.
        var dTilde = [Double](repeating: 0, count: e * k)
        for (column, direction) in directions.enumerated() {
            precondition(direction.count == d)
            for i in 0..<d { dTilde[i * k + column] = direction[i] }
        }
        let y = try LinearAlgebra.solvePositiveDefinite(g, dimension: e, dTilde, columns: k)
        var kMatrix = [Double](repeating: 0, count: k * k)
        for a in 0..<k {
            for b in 0..<k {
                var s = 0.0; for i in 0..<e { s += dTilde[i * k + a] * y[i * k + b] }; kMatrix[a * k + b] = s
            }
        }
        guard kMatrix.allSatisfy(\.isFinite), (0..<k).allSatisfy({ kMatrix[$0 * k + $0] > 0 }) else {
            return (weight, bias, 0)
        }

        // W̃ (o × e), C = W̃ D̃ (o × k), then [Ŵ b̂] = W̃ − C K⁻¹ Yᵀ.
        var wTilde = [Double](repeating: 0, count: o * e)
        for r in 0..<o {
            for i in 0..<d { wTilde[r * e + i] = weight[r * d + i] }
            if let bias { wTilde[r * e + d] = bias[r] }
        }
        if let cross {
            // Compensation: the map from the erased model's rows to the original model's outputs,
            // W̃ C̃ G̃⁻¹ with C̃ = Σ x̃_original x̃ᵀ / n, is what the constraint is then applied to.
            var cTilde = [Double](repeating: 0, count: e * e)
            for i in 0..<d {
                for j in 0..<d { cTilde[i * e + j] = cross.moment[i * d + j] * scale }
                if augmented {
                    cTilde[i * e + d] = cross.originalSum[i] * scale
                    cTilde[d * e + i] = sum[i] * scale
                }
            }
            if augmented { cTilde[d * e + d] = 1 }
            var m = [Double](repeating: 0, count: o * e)
            LinearAlgebra.multiply(wTilde, cTilde, into: &m, m: o, n: e, k: e)
            var mT = [Double](repeating: 0, count: e * o)
            for r in 0..<o { for i in 0..<e { mT[i * o + r] = m[r * e + i] } }
            let targetT = try LinearAlgebra.solvePositiveDefinite(g, dimension: e, mT, columns: o)
            for r in 0..<o { for i in 0..<e { wTilde[r * e + i] = targetT[i * o + r] } }
        }
        let compensated = wTilde
        var c = [Double](repeating: 0, count: o * k)
        LinearAlgebra.multiply(wTilde, dTilde, into: &c, m: o, n: k, k: e)
        // C K⁻¹: solve K Zᵀ = Cᵀ (K is symmetric positive definite as D̃ᵀ G̃⁻¹ D̃ with independent columns).
        var cT = [Double](repeating: 0, count: k * o)
        for r in 0..<o { for a in 0..<k { cT[a * o + r] = c[r * k + a] } }
        let zT = try LinearAlgebra.solvePositiveDefinite(kMatrix, dimension: k, cT, columns: o)
        var z = [Double](repeating: 0, count: o * k)
        for r in 0..<o { for a in 0..<k { z[r * k + a] = zT[a * o + r] } }
        // W̃ −= Z Yᵀ.
        LinearAlgebra.multiply(z, y, transposeB: true, into: &wTilde, m: o, n: e, k: k, alpha: -1, beta: 1)
        // Retain distortion: tr(ΔW̃ G̃ ΔW̃ᵀ) / tr(W̃ G̃ W̃ᵀ), the share of the retain outputs' energy the refit moves.
        let original = compensated
        let change = zip(wTilde, original).map { $0 - $1 }
        let distortion =
            quadraticTrace(change, g, rows: o, width: e)
            / max(quadraticTrace(original, g, rows: o, width: e), .leastNormalMagnitude)
        var newWeight = [Double](repeating: 0, count: o * d)
        for r in 0..<o { for i in 0..<d { newWeight[r * d + i] = wTilde[r * e + i] } }
        let newBias = bias.map { _ in (0..<o).map { wTilde[$0 * e + d] } }
        return (newWeight, newBias, distortion)
    }

    /// `Σ x_original x_erasedᵀ` and `Σ x_original` over the same retain rows seen by the original
    /// model and by the model with the earlier layers erased.
    struct CrossMoment {
        var moment: [Double]
        var originalSum: [Double]
        var rows = 0

        init(dimension d: Int) {
            moment = [Double](repeating: 0, count: d * d)
            originalSum = [Double](repeating: 0, count: d)
        }

        /// Adds `count` rows of each (row-major, `d` wide), in the same order.
        mutating func add(original: [Float], erased: [Float], count: Int, dimension d: Int) {
            precondition(original.count >= count * d && erased.count >= count * d)
            original.withUnsafeBufferPointer { a in
                erased.withUnsafeBufferPointer { b in
                    moment.withUnsafeMutableBufferPointer { m in
                        LinearAlgebra.accumulateCross(
                            a.baseAddress!, b.baseAddress!, count: count, dimension: d, into: m.baseAddress!)
                    }
                }
                for r in 0..<count { for i in 0..<d { originalSum[i] += Double(a[r * d + i]) } }
            }
            rows += count
        }
    }

    /// `tr(A G Aᵀ)` for `A` of `rows × width`.
    private static func quadraticTrace(_ a: [Double], _ g: [Double], rows: Int, width e: Int) -> Double {
        var ag = [Double](repeating: 0, count: rows * e)
        LinearAlgebra.multiply(a, g, into: &ag, m: rows, n: e, k: e)
        var total = 0.0
        for i in 0..<(rows * e) { total += ag[i] * a[i] }
        return total
    }
}
