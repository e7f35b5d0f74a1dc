import Foundation
import LetheCore
import LetheIR
import XCTest
@testable import LetheUnlearn

/// The erasure method's formulas (DESIGN §4b) on cases small enough to check by hand, and against an
/// independent float64 solution of the same problems written out naively here.
final class ErasureFormulaTests: XCTestCase {
    /// d = 2, no bias: retain rows live on e₁ only, the concept direction is e₂. Erasing e₂ costs the
    /// retain rows nothing, so the refit keeps W's first column and zeroes its second.
    func testGuardedRefitByHand() throws {
        let w: [Double] = [
            1, 2,
            3, 4
        ]
        let gram: [Double] = [
            5, 0,
            0, 0
        ] // Σ x xᵀ of rows (1,0) and (2,0)
        let refit = try GuardedRefit.apply(
            weight: w, bias: nil, outputs: 2, dimension: 2, gram: gram, sum: [3, 0], rows: 2,
            directions: [[0, 1]], ridge: 1e-9)
        XCTAssertEqual(refit.weight[0], 1, accuracy: 1e-6)
        XCTAssertEqual(refit.weight[1], 0, accuracy: 1e-6)
        XCTAssertEqual(refit.weight[2], 3, accuracy: 1e-6)
        XCTAssertEqual(refit.weight[3], 0, accuracy: 1e-6)
    }

    /// With a bias, the refit may move the bias to keep retain outputs: rows x = (1, c) with the
    /// concept direction e₂ give outputs w₁ + w₂c; the closest map blind to e₂ is w₁ + w₂c̄ (c̄ the
    /// retain mean of the second coordinate), absorbed into the bias.
    func testGuardedRefitMovesTheBias() throws {
        let rows: [[Double]] = [[1, 0.5], [1, 1.5], [1, 1.0]]
        let (gram, sum) = moments(rows)
        let refit = try GuardedRefit.apply(
            weight: [2, 3], bias: [1], outputs: 1, dimension: 2, gram: gram, sum: sum, rows: 3,
            directions: [[0, 1]], ridge: 1e-12)
        XCTAssertEqual(refit.weight[1], 0, accuracy: 1e-6)
        // Output on the retain rows: 2·x₁ + 3·1.0 + 1 on average; x₁ ≡ 1 and the bias are confounded,
        // so only their sum is fixed: Ŵ₁ + b̂ = 2 + 3 + 1.
        XCTAssertEqual(refit.weight[0] + refit.bias![0], 6, accuracy: 1e-5)
    }

    /// Random problem: the constraint holds exactly and the retain loss is the KKT optimum, solved
    /// independently as one bordered linear system.
    func testGuardedRefitMatchesTheConstrainedLeastSquaresOptimum() throws {
        let d = 5, o = 3, n = 40, k = 2
        let x = TestSupport.randomValues(n * d, seed: 11)
        let rows = (0..<n).map { Array(x[($0 * d)..<(($0 + 1) * d)]) }
        let (gram, sum) = moments(rows)
        let w = TestSupport.randomValues(o * d, seed: 12)
        let b = TestSupport.randomValues(o, seed: 13)
        let directions = (0..<k).map { TestSupport.randomValues(d, seed: 20 + UInt64($0)) }
        let ridge = 1e-3
        let refit = try GuardedRefit.apply(
            weight: w, bias: b, outputs: o, dimension: d, gram: gram, sum: sum, rows: n,
            directions: directions, ridge: ridge)
        for r in 0..<o {
            for direction in directions {
                let product = (0..<d).reduce(0.0) { $0 + refit.weight[r * d + $1] * direction[$1] }
                XCTAssertEqual(product, 0, accuracy: 1e-9, "Ŵ D = 0")
            }
        }
        // Independent: minimise tr((Ŵ̃ − W̃) G̃ (Ŵ̃ − W̃)ᵀ) s.t. Ŵ̃ D̃ = 0, row by row:
        // [G̃  D̃; D̃ᵀ 0] [ŵᵀ; μ] = [G̃ w̃ᵀ; 0].
        let e = d + 1
        var g = [Double](repeating: 0, count: e * e)
        for i in 0..<d {
            for j in 0..<d { g[i * e + j] = gram[i * d + j] / Double(n) }; g[i * e + d] = sum[i] / Double(n);
            g[d * e + i] = sum[i] / Double(n)
        }
        g[d * e + d] = 1
        let trace = (0..<e).reduce(0.0) { $0 + g[$1 * e + $1] }
        for i in 0..<e { g[i * e + i] += ridge * trace / Double(e) }
        let size = e + k
        for r in 0..<o {
            var a = [Double](repeating: 0, count: size * size)
            var rhs = [Double](repeating: 0, count: size)
            let wTilde = Array(w[(r * d)..<((r + 1) * d)]) + [b[r]]
            for i in 0..<e {
                for j in 0..<e { a[i * size + j] = g[i * e + j]; rhs[i] += g[i * e + j] * wTilde[j] }
                for (c, direction) in directions.enumerated() where i < d {
                    a[i * size + e + c] = direction[i]
                    a[(e + c) * size + i] = direction[i]
                }
            }
            let solution = try gaussianSolve(a, rhs, size: size)
            for i in 0..<d { XCTAssertEqual(refit.weight[r * d + i], solution[i], accuracy: 1e-8) }
            XCTAssertEqual(refit.bias![r], solution[d], accuracy: 1e-8)
        }
    }

    /// With compensation the refit is the constrained least-squares map from the erased model's rows
    /// to the original model's outputs: argmin Σ‖Ŵ̃ x̃_erased − W̃ x̃_original‖² s.t. Ŵ̃ D̃ = 0, i.e.
    /// [G̃  D̃; D̃ᵀ 0] [ŵᵀ; μ] = [C̃ᵀ w̃ᵀ; 0] with C̃ = Σ x̃_original x̃_erasedᵀ / n.
    func testCompensatedRefitMapsErasedRowsToOriginalOutputs() throws {
        let d = 4, o = 3, n = 60
        let original = (0..<n).map { r in TestSupport.randomValues(d, seed: 100 + UInt64(r)) }
        let mix = TestSupport.randomValues(d * d, seed: 7)
        let noise = TestSupport.randomValues(n * d, seed: 8)
        var erased: [[Double]] = []
        for (r, x) in original.enumerated() {
            var row = [Double](repeating: 0, count: d)
            for i in 0..<d {
                var mixed = 0.0
                for j in 0..<d { mixed += mix[i * d + j] * x[j] }
                row[i] = 0.5 * mixed + x[i] + 0.05 * noise[r * d + i]
            }
            erased.append(row)
        }
        let (gram, sum) = moments(erased)
        var cross = GuardedRefit.CrossMoment(dimension: d)
        cross.add(
            original: original.flatMap { $0.map(Float.init) }, erased: erased.flatMap { $0.map(Float.init) }, count: n,
            dimension: d)
        // The moment accumulates in float32 inputs: compare against the same rounding.
        let originalF = original.map { $0.map { Double(Float($0)) } },
            erasedF = erased.map { $0.map { Double(Float($0)) } }
        let w = TestSupport.randomValues(o * d, seed: 9), b = TestSupport.randomValues(o, seed: 10)
        let direction = TestSupport.randomValues(d, seed: 11)
        let ridge = 1e-6
        let refit = try GuardedRefit.apply(
            weight: w, bias: b, outputs: o, dimension: d, gram: gram, sum: sum, rows: n,
            directions: [direction], ridge: ridge, compensating: cross)
        let e = d + 1, size = e + 1
        var g = [Double](repeating: 0, count: e * e), c = [Double](repeating: 0, count: e * e)
        for (xo, xn) in zip(originalF, erasedF) {
            let a = xo + [1], z = xn + [1]
            for i in 0..<e { for j in 0..<e { c[i * e + j] += a[i] * z[j] / Double(n) } }
        }
        for i in 0..<d {
            for j in 0..<d { g[i * e + j] = gram[i * d + j] / Double(n) }; g[i * e + d] = sum[i] / Double(n);
            g[d * e + i] = sum[i] / Double(n)
        }
        g[d * e + d] = 1
        let trace = (0..<e).reduce(0.0) { $0 + g[$1 * e + $1] }
        for i in 0..<e { g[i * e + i] += ridge * trace / Double(e) }
        for r in 0..<o {
            let wTilde = Array(w[(r * d)..<((r + 1) * d)]) + [b[r]]
            var a = [Double](repeating: 0, count: size * size), rhs = [Double](repeating: 0, count: size)
            for i in 0..<e {
                for j in 0..<e { a[i * size + j] = g[i * e + j]; rhs[i] += c[j * e + i] * wTilde[j] }
                if i < d { a[i * size + e] = direction[i]; a[e * size + i] = direction[i] }
            }
            let solution = try gaussianSolve(a, rhs, size: size)
            for i in 0..<d { XCTAssertEqual(refit.weight[r * d + i], solution[i], accuracy: 1e-6) }
            XCTAssertEqual(refit.bias![r], solution[d], accuracy: 1e-6)
        }
        // Without compensation the refit stays near W (not near the map to the original outputs).
        let plain = try GuardedRefit.apply(
            weight: w, bias: b, outputs: o, dimension: d, gram: gram, sum: sum, rows: n,
            directions: [direction], ridge: ridge)
        XCTAssertGreaterThan(zip(plain.weight, refit.weight).map { abs($0 - $1) }.max()!, 0.05)
    }

    /// Forget logits are capped `margin` below the best retained logit, for every row.
    func testHeadRepairTargetsByHand() {
        let logits: [Double] = [
            5, 1, 2, // forget class 0 leads: capped to 2 − 1
            0, 3, 1
        ] // already below: unchanged
        let t = HeadRepair.targets(logits: logits, classes: 3, forgetClasses: [0], margin: 1)
        XCTAssertEqual(t, [1, 1, 2, 0, 3, 1])
    }

    /// The ridge refit solves the normal equations `(F̃ᵀF̃/n + λI) Θ = F̃ᵀT/n` (checked naively).
    func testHeadRepairSolvesTheNormalEquations() throws {
        let n = 30, d = 4, classes = 3
        let f = TestSupport.randomValues(n * d, seed: 31)
        let t = TestSupport.randomValues(n * classes, seed: 32)
        let ridge = 0.1
        let fit = try HeadRepair.refit(
            features: f, rows: n, dimension: d, targets: t, classes: classes, withBias: true, ridge: ridge)
        let e = d + 1
        var x = [Double](repeating: 1, count: n * e)
        for r in 0..<n { for i in 0..<d { x[r * e + i] = f[r * d + i] } }
        var g = TestSupport.multiply(TestSupport.transpose(x, rows: n, columns: e), x, m: e, k: n, n: e).map {
            $0 / Double(n)
        }
        let trace = (0..<e).reduce(0.0) { $0 + g[$1 * e + $1] }
        for i in 0..<e { g[i * e + i] += ridge * trace / Double(e) }
        let xt = TestSupport.multiply(TestSupport.transpose(x, rows: n, columns: e), t, m: e, k: n, n: classes).map {
            $0 / Double(n)
        }
        for c in 0..<classes {
            let column = try gaussianSolve(g, (0..<e).map { xt[$0 * classes + c] }, size: e)
            for i in 0..<d { XCTAssertEqual(fit.weight[c * d + i], column[i], accuracy: 1e-9) }
            XCTAssertEqual(fit.bias![c], column[d], accuracy: 1e-9)
        }
    }

    func testSelectionRule() {
        let rule = SelectionRule(forgetTarget: 0.01)
        // First: ACC_f within the target; among those the highest ACC_r.
        XCTAssertEqual(rule.choose([(0.95, 0.05), (0.90, 0.0), (0.92, 0.01), (0.97, 0.02)]), 2)
        // None within the target: the lowest ACC_f, then the highest ACC_r.
        XCTAssertEqual(rule.choose([(0.95, 0.05), (0.90, 0.03), (0.93, 0.03)]), 2)
        // Ties keep the earlier candidate.
        XCTAssertEqual(rule.choose([(0.9, 0.0), (0.9, 0.0)]), 0)
    }

    /// The probe agrees with scikit-learn's LogisticRegression(C=1) on a real-ish problem.
    func testLinearProbeAgreesWithScikitLearn() throws {
        let python = try TestSupport.requirePython()
        let n = 300, d = 6, classes = 3
        var features = TestSupport.randomValues(n * d, seed: 41)
        let labels = (0..<n).map { $0 % classes }
        for r in 0..<n { features[r * d + labels[r]] += 1.5 }
        let probe = LinearProbe(features: features, labels: labels, dimension: d, classes: classes)
        let test = TestSupport.randomValues(200 * d, seed: 42)
        let ours = probe.predict(test)
        let input =
            ([features, test].map { $0.map { String($0) }.joined(separator: " ") } + [
                labels.map(String.init).joined(separator: " ")
            ])
            .joined(separator: "\n")
        let output = try TestSupport.runPython(
            python,
            script: """
                import sys, numpy as np
                from sklearn.linear_model import LogisticRegression
                from sklearn.preprocessing import StandardScaler
                lines = sys.stdin.read().split("\\n")
                x = np.array(lines[0].split(), float).reshape(-1, \(d)); t = np.array(lines[1].split(), float).reshape(-1, \(d))
                y = np.array(lines[2].split(), int)
                s = StandardScaler().fit(x)
                m = LogisticRegression(C=1.0, max_iter=5000, tol=1e-10).fit(s.transform(x), y)
                print(" ".join(map(str, m.predict(s.transform(t)))))
                """, input: input)
        let theirs = output.split(separator: " ").map { Int($0.trimmingCharacters(in: .whitespacesAndNewlines))! }
        XCTAssertEqual(theirs.count, ours.count)
        let agree = zip(ours, theirs).filter { $0 == $1 }.count
        XCTAssertGreaterThanOrEqual(agree, ours.count - 1, "\(agree) of \(ours.count) predictions agree")
    }

    // MARK: - helpers

    private func moments(_ rows: [[Double]]) -> (gram: [Double], sum: [Double]) {
        let d = rows[0].count
        var gram = [Double](repeating: 0, count: d * d), sum = [Double](repeating: 0, count: d)
        for x in rows { for i in 0..<d { sum[i] += x[i]; for j in 0..<d { gram[i * d + j] += x[i] * x[j] } } }
        return (gram, sum)
    }

    /// Gaussian elimination with partial pivoting (independent of LAPACK).
    private func gaussianSolve(_ a: [Double], _ b: [Double], size n: Int) throws -> [Double] {
        var m = a, x = b
        for col in 0..<n {
            let pivot = (col..<n).max { abs(m[$0 * n + col]) < abs(m[$1 * n + col]) }!
            guard abs(m[pivot * n + col]) > 1e-14 else { throw XCTSkip("singular") }
            if pivot != col {
                for j in 0..<n { m.swapAt(col * n + j, pivot * n + j) }
                x.swapAt(col, pivot)
            }
            for r in (col + 1)..<max(col + 1, n) {
                let f = m[r * n + col] / m[col * n + col]
                for j in col..<n { m[r * n + j] -= f * m[col * n + j] }
                x[r] -= f * x[col]
            }
        }
        for r in stride(from: n - 1, through: 0, by: -1) {
            var s = x[r]
            for j in (r + 1)..<max(r + 1, n) { s -= m[r * n + j] * x[j] }
            x[r] = s / m[r * n + r]
        }
        return x
    }
}
