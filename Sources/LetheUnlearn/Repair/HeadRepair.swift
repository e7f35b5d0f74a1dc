/// The closed-form retain repair of the final linear layer (DESIGN §4b): refit `[W b]` by ridge
/// regression so that, on the patched model's penultimate features `F`, it reproduces the original
/// model's logits `Z`, with every forget class's logit held below the sample's best other logit:
///
/// ```
/// [W b]ᵀ = Θ₀ + (F̃ᵀF̃ + λI)⁻¹ F̃ᵀ (T − F̃ Θ₀),   F̃ = [F 1],   T = Z with T[c] = min(Z[c], max_{k ∉ forget} Z[k] − margin)
/// ```
///
/// The ridge pulls toward the original head `Θ₀ = [W₀ b₀]ᵀ` rather than toward zero: the original was
/// fitted on the whole training set, the repair sees only the samples given to Lethe.
///
/// The cap applies to every sample, retain ones too, so retain samples the original model confused
/// with a forgotten class fall to their next choice, as in a model retrained without it.
enum HeadRepair {
    /// Targets for the regression: `logits` (`n × classes`, row-major) with the forget classes capped.
    static func targets(logits: [Double], classes: Int, forgetClasses: Set<Int>, margin: Double) -> [Double] {
        precondition(classes > 0 && logits.count % classes == 0)
        var t = logits
        let kept = (0..<classes).filter { !forgetClasses.contains($0) }
        guard !kept.isEmpty else { return t }
        for r in 0..<(logits.count / classes) {
            let row = r * classes
            let best = kept.map { logits[row + $0] }.max()!
            for c in forgetClasses where c >= 0 && c < classes { t[row + c] = min(t[row + c], best - margin) }
        }
        return t
    }

    /// The ridge solution: weight `classes × d` (row-major, acting as `W·f`) and bias (`nil` when the
    /// layer has none and the fit is linear). `ridge` is relative to the mean diagonal of `F̃ᵀF̃ / n`.
    /// `prior`: the original weight (`classes × d`) and bias the ridge pulls toward (zero when nil).
    static func refit(
        features: [Double], rows n: Int, dimension d: Int, targets: [Double], classes: Int,
        withBias: Bool, ridge: Double, prior: (weight: [Double], bias: [Double]?)? = nil
    ) throws -> (weight: [Double], bias: [Double]?) {
        precondition(features.count == n * d && targets.count == n * classes)
        if let prior {
            let base = logits(
                features: features, rows: n, dimension: d, weight: prior.weight, bias: withBias ? prior.bias : nil,
                classes: classes)
            let residual = try refit(
                features: features, rows: n, dimension: d, targets: zip(targets, base).map { $0 - $1 },
                classes: classes, withBias: withBias, ridge: ridge)
            let weight = zip(prior.weight, residual.weight).map { $0 + $1 }
            let bias = residual.bias.map { delta in (0..<classes).map { (prior.bias?[$0] ?? 0) + delta[$0] } }
            return (weight, bias)
        }
        let e = withBias ? d + 1 : d
        var x = features
        if withBias {
            x = [Double](repeating: 1, count: n * e)
            for r in 0..<n { for i in 0..<d { x[r * e + i] = features[r * d + i] } }
        }
        var gram = [Double](repeating: 0, count: e * e)
        var cross = [Double](repeating: 0, count: e * classes)
        LinearAlgebra.multiply(x, transposeA: true, x, into: &gram, m: e, n: e, k: n, alpha: 1 / Double(max(n, 1)))
        LinearAlgebra.multiply(
            x, transposeA: true, targets, into: &cross, m: e, n: classes, k: n, alpha: 1 / Double(max(n, 1)))
        var trace = 0.0
        for i in 0..<e { trace += gram[i * e + i] }
        let shift = ridge * max(trace / Double(e), .leastNormalMagnitude)
        for i in 0..<e { gram[i * e + i] += shift }
        // e × classes
        let solution = try LinearAlgebra.solvePositiveDefinite(gram, dimension: e, cross, columns: classes)
        var weight = [Double](repeating: 0, count: classes * d)
        for k in 0..<classes { for i in 0..<d { weight[k * d + i] = solution[i * classes + k] } }
        let bias = withBias ? (0..<classes).map { solution[d * classes + $0] } : nil
        return (weight, bias)
    }

    /// Like a model that never saw them, the repaired head never ranks a forgotten class first on the
    /// samples it was fitted on: their bias drops until they stay `floor` below every row's best other logit.
    static func loweringForgetBias(
        _ bias: [Double], weight: [Double], features: [Double], rows n: Int, dimension d: Int,
        classes: Int, forgetClasses: Set<Int>, floor: Double
    ) -> [Double] {
        let z = logits(features: features, rows: n, dimension: d, weight: weight, bias: bias, classes: classes)
        let lead = largestForgetLead(logits: z, classes: classes, forgetClasses: forgetClasses)
        guard lead.isFinite, lead > -floor else { return bias }
        var lowered = bias
        for c in forgetClasses where c >= 0 && c < classes { lowered[c] -= lead + floor }
        return lowered
    }

    /// The largest `max_{c ∈ forget} z[c] − max_{k ∉ forget} z[k]` over the rows: how far the forget
    /// classes lead on their most confident row (negative when they never lead).
    static func largestForgetLead(logits: [Double], classes: Int, forgetClasses: Set<Int>) -> Double {
        let kept = (0..<classes).filter { !forgetClasses.contains($0) }
        let forgotten = (0..<classes).filter { forgetClasses.contains($0) }
        guard !kept.isEmpty, !forgotten.isEmpty else { return -.infinity }
        var lead = -Double.infinity
        for r in 0..<(logits.count / classes) {
            let row = r * classes
            lead = max(lead, forgotten.map { logits[row + $0] }.max()! - kept.map { logits[row + $0] }.max()!)
        }
        return lead
    }

    /// `W·f + b` for each row of `features`.
    static func logits(
        features: [Double], rows n: Int, dimension d: Int, weight: [Double], bias: [Double]?, classes: Int
    ) -> [Double] {
        var out = [Double](repeating: 0, count: n * classes)
        LinearAlgebra.multiply(features, weight, transposeB: true, into: &out, m: n, n: classes, k: d)
        if let bias { for r in 0..<n { for k in 0..<classes { out[r * classes + k] += bias[k] } } }
        return out
    }
}
