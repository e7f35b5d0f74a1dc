import Foundation
import LetheCore
import LetheTestSupport
import XCTest
@testable import LetheUnlearn

/// Deterministic test data and small dense-matrix helpers (naive, for checking the BLAS paths).
enum TestSupport {
    static var packageRoot: URL { TestEnvironment.packageRootURL }

    static func randomValues(_ count: Int, seed: UInt64, scale: Double = 1) -> [Double] {
        var generator = SplitMix64(seed: seed)
        return (0..<count).map { _ in (Double(generator.next() >> 11) / Double(1 << 53) * 2 - 1) * scale }
    }

    /// Row-major `a (m×k) · b (k×n)`.
    static func multiply(_ a: [Double], _ b: [Double], m: Int, k: Int, n: Int) -> [Double] {
        var c = [Double](repeating: 0, count: m * n)
        for i in 0..<m {
            for p in 0..<k { let v = a[i * k + p]; if v != 0 { for j in 0..<n { c[i * n + j] += v * b[p * n + j] } } }
        }
        return c
    }

    static func transpose(_ a: [Double], rows: Int, columns: Int) -> [Double] {
        var t = [Double](repeating: 0, count: a.count)
        for i in 0..<rows { for j in 0..<columns { t[j * rows + i] = a[i * columns + j] } }
        return t
    }

    static func identity(_ d: Int) -> [Double] {
        var m = [Double](repeating: 0, count: d * d)
        for i in 0..<d { m[i * d + i] = 1 }
        return m
    }

    /// `Σ x xᵀ` over the rows of `x` (rows × d), naively in float64.
    static func gram(_ x: [Double], rows: Int, d: Int) -> [Double] {
        multiply(transpose(x, rows: rows, columns: d), x, m: d, k: rows, n: d)
    }

    static func maxAbsDifference(_ a: [Double], _ b: [Double]) -> Double {
        precondition(a.count == b.count, "\(a.count) vs \(b.count)")
        return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
    }

    static var python: String? { TestEnvironment.python }

    /// The Python interpreter with the reference libraries, or a skip (a failure under CI).
    static func requirePython() throws -> String { try TestEnvironment.requirePython() }

    /// Runs `script` with `python`, feeding `input` on stdin; returns stdout.
    static func runPython(_ python: String, script: String, input: String) throws -> String {
        try TestEnvironment.runPython(script, input: input, interpreter: python)
    }
}
