import Foundation

/// A multinomial logistic regression on standardised features — the linear probe of DESIGN §4b that
/// asks how much of a forgotten class the features still carry. Same objective as scikit-learn's
/// `LogisticRegression(C=1)` (L2 on the weights, none on the intercepts), minimised by L-BFGS.
struct LinearProbe {
    let dimension: Int
    let classes: Int
    /// Standardisation fitted on the training features.
    let mean: [Double]
    let scale: [Double]
    /// Row-major `classes × (dimension + 1)`, the last column the intercept.
    let parameters: [Double]

    /// Fits on `features` (`labels.count × dimension`, row-major); labels in `0..<classes`.
    init(features: [Double], labels: [Int], dimension d: Int, classes k: Int, c: Double = 1, maxIterations: Int = 500) {
        precondition(features.count == labels.count * d && k > 1)
        let n = labels.count
        var mean = [Double](repeating: 0, count: d), scale = [Double](repeating: 0, count: d)
        for r in 0..<n { for i in 0..<d { mean[i] += features[r * d + i] } }
        for i in 0..<d { mean[i] /= Double(max(n, 1)) }
        for r in 0..<n { for i in 0..<d { let v = features[r * d + i] - mean[i]; scale[i] += v * v } }
        // A constant feature keeps scale 1, as StandardScaler does.
        for i in 0..<d { let s = (scale[i] / Double(max(n, 1))).squareRoot(); scale[i] = s > 0 ? s : 1 }
        let e = d + 1
        var x = [Double](repeating: 1, count: n * e)
        for r in 0..<n { for i in 0..<d { x[r * e + i] = (features[r * d + i] - mean[i]) / scale[i] } }
        let objective = Objective(x: x, labels: labels, rows: n, width: e, classes: k, inverseC: 1 / c)
        self.dimension = d
        self.classes = k
        self.mean = mean
        self.scale = scale
        self.parameters = LBFGS.minimize(start: [Double](repeating: 0, count: k * e), maxIterations: maxIterations) {
            objective.valueAndGradient($0)
        }
    }

    /// The most probable class of each row.
    func predict(_ features: [Double]) -> [Int] {
        let d = dimension, e = d + 1
        let n = features.count / max(d, 1)
        return (0..<n).map { r in
            var best = 0, bestScore = -Double.infinity
            for k in 0..<classes {
                var z = parameters[k * e + d]
                for i in 0..<d { z += parameters[k * e + i] * (features[r * d + i] - mean[i]) / scale[i] }
                if z > bestScore { bestScore = z; best = k }
            }
            return best
        }
    }

    /// Negative log-likelihood plus `‖W‖² / (2C)`, and its gradient.
    private struct Objective {
        let x: [Double]
        let labels: [Int]
        let rows: Int
        let width: Int
        let classes: Int
        let inverseC: Double

        func valueAndGradient(_ w: [Double]) -> (Double, [Double]) {
            let n = rows, e = width, k = classes
            var z = [Double](repeating: 0, count: n * k)
            LinearAlgebra.multiply(x, w, transposeB: true, into: &z, m: n, n: k, k: e)
            var loss = 0.0
            for r in 0..<n {
                let row = r * k
                var top = -Double.infinity
                for j in 0..<k { top = max(top, z[row + j]) }
                var sum = 0.0
                for j in 0..<k { z[row + j] = Foundation.exp(z[row + j] - top); sum += z[row + j] }
                let label = labels[r]
                loss -= Foundation.log(max(z[row + label] / sum, .leastNormalMagnitude))
                for j in 0..<k { z[row + j] /= sum }
                z[row + label] -= 1
            }
            var gradient = [Double](repeating: 0, count: k * e)
            LinearAlgebra.multiply(z, transposeA: true, x, into: &gradient, m: k, n: e, k: n)
            for j in 0..<k {
                for i in 0..<(e - 1) {
                    let v = w[j * e + i]
                    loss += 0.5 * inverseC * v * v
                    gradient[j * e + i] += inverseC * v
                }
            }
            return (loss, gradient)
        }
    }
}

/// Limited-memory BFGS with a backtracking (Armijo) line search.
enum LBFGS {
    static func minimize(
        start: [Double], maxIterations: Int, memory: Int = 10, tolerance: Double = 1e-6,
        _ function: ([Double]) -> (Double, [Double])
    ) -> [Double] {
        var x = start
        var (value, gradient) = function(x)
        var steps: [[Double]] = [], changes: [[Double]] = [], rhos: [Double] = []
        func dot(_ a: [Double], _ b: [Double]) -> Double {
            var s = 0.0; for i in a.indices { s += a[i] * b[i] }; return s
        }
        for _ in 0..<maxIterations {
            if gradient.map(abs).max() ?? 0 <= tolerance { break }
            // Two-loop recursion for the search direction.
            var q = gradient
            var alphas = [Double](repeating: 0, count: steps.count)
            for i in stride(from: steps.count - 1, through: 0, by: -1) {
                alphas[i] = rhos[i] * dot(steps[i], q)
                for j in q.indices { q[j] -= alphas[i] * changes[i][j] }
            }
            if let s = steps.last, let y = changes.last {
                let gamma = dot(s, y) / max(dot(y, y), .leastNormalMagnitude)
                for j in q.indices { q[j] *= gamma }
            }
            for i in steps.indices {
                let beta = rhos[i] * dot(changes[i], q)
                for j in q.indices { q[j] += steps[i][j] * (alphas[i] - beta) }
            }
            var direction = q.map { -$0 }
            var slope = dot(gradient, direction)
            if slope >= 0 { direction = gradient.map { -$0 }; slope = -dot(gradient, gradient) }
            var step = steps.isEmpty ? 1 / max(gradient.map(abs).max() ?? 1, 1) : 1.0
            var candidate = x, candidateValue = value, candidateGradient = gradient
            var accepted = false
            for _ in 0..<40 {
                for j in x.indices { candidate[j] = x[j] + step * direction[j] }
                (candidateValue, candidateGradient) = function(candidate)
                if candidateValue <= value + 1e-4 * step * slope { accepted = true; break }
                step *= 0.5
            }
            guard accepted else { break }
            let s = zip(candidate, x).map { $0 - $1 }
            let y = zip(candidateGradient, gradient).map { $0 - $1 }
            let sy = dot(s, y)
            let improvement = value - candidateValue
            x = candidate; value = candidateValue; gradient = candidateGradient
            if sy > 1e-12 {
                steps.append(s); changes.append(y); rhos.append(1 / sy)
                if steps.count > memory { steps.removeFirst(); changes.removeFirst(); rhos.removeFirst() }
            }
            if improvement <= 1e-10 * max(abs(value), 1) { break }
        }
        return x
    }
}
