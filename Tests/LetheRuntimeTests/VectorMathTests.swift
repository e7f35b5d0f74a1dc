import Foundation
import XCTest
@testable import LetheRuntime

/// The vector `exp`, `erf` and `tanh` against the C library over their whole float range.
final class VectorMathTests: XCTestCase {
    private func sweep(from low: Float, to high: Float, count: Int) -> [Float] {
        (0..<count).map { low + (high - low) * Float($0) / Float(count - 1) }
    }

    private func apply(_ values: [Float], _ body: (UnsafeMutablePointer<Float>, Int) -> Void) -> [Float] {
        var out = values
        out.withUnsafeMutableBufferPointer { body($0.baseAddress!, $0.count) }
        return out
    }

    func testExpIsWithinFourUlpsOfTheCLibrary() {
        let xs = sweep(from: -87, to: 88.5, count: 200_003)
        let got = apply(xs, VectorMath.exp)
        var worst: Float = 0
        for (x, y) in zip(xs, got) {
            let want = Foundation.exp(x)
            worst = max(worst, abs(y - want) / want.ulp)
        }
        XCTAssertLessThanOrEqual(worst, 4, "worst error \(worst) ulps")
        let edges = apply([-.infinity, -100, -87.4, 89, .infinity, .nan, 0, 1], VectorMath.exp)
        XCTAssertEqual(Array(edges[0..<3]), [0, 0, 0])
        XCTAssertEqual(Array(edges[3..<5]), [.infinity, .infinity])
        XCTAssertTrue(edges[5].isNaN)
        XCTAssertEqual(edges[6], 1)
        XCTAssertEqual(edges[7], Float(M_E), accuracy: 2 * Float(M_E).ulp)
    }

    func testErfIsWithinOneMillionthOfTheCLibrary() {
        let xs = sweep(from: -6, to: 6, count: 120_001) + [-.infinity, .infinity]
        let got = apply(xs, VectorMath.erf)
        var worst: Float = 0
        for (x, y) in zip(xs, got) { worst = max(worst, abs(y - erff(x))) }
        XCTAssertLessThan(worst, 1e-6, "worst absolute error \(worst)")
        XCTAssertTrue(apply([.nan], VectorMath.erf)[0].isNaN)
        // Odd, and small arguments keep their relative precision (GELU multiplies by x).
        for x: Float in [1e-3, 1e-5, 0.3] {
            let y = apply([x, -x], VectorMath.erf)
            XCTAssertEqual(y[0], -y[1])
            XCTAssertEqual(y[0], erff(x), accuracy: 4 * erff(x).ulp)
        }
    }

    func testTanhIsWithinFourUlpsOfTheCLibrary() {
        let xs = sweep(from: -12, to: 12, count: 240_001) + [1e-3, -1e-3, 1e-6, 0.3999, 0.4, 0.4001, 44, 100]
        let got = apply(xs, VectorMath.tanh)
        var worst: Float = 0
        for (x, y) in zip(xs, got) {
            let want = tanhf(x)
            worst = max(worst, want == 0 ? abs(y) : abs(y - want) / want.ulp)
        }
        XCTAssertLessThanOrEqual(worst, 4, "worst error \(worst) ulps")
        let edges = apply([-.infinity, .infinity, .nan, 0, -0.0], VectorMath.tanh)
        XCTAssertEqual(Array(edges[0..<2]), [-1, 1])
        XCTAssertTrue(edges[2].isNaN)
        XCTAssertEqual(edges[3], 0)
        XCTAssertEqual(edges[4], 0)
    }

    func testSoftmaxRowsAndMoments() {
        for length in [1, 7, 8, 9, 50, 197] {
            let xs = (0..<length).map { Float(($0 * 7) % 13) * 0.9 - 4 }
            var out = [Float](repeating: -1, count: length)
            let done = xs.withUnsafeBufferPointer { source in
                out.withUnsafeMutableBufferPointer { VectorMath.softmax(source.baseAddress!, $0.baseAddress!, length) }
            }
            XCTAssertTrue(done)
            let high = xs.max()!
            let exps = xs.map { Foundation.exp(Double($0 - high)) }
            let total = exps.reduce(0, +)
            for (a, b) in zip(out, exps) { XCTAssertEqual(Double(a), b / total, accuracy: 1e-6 * max(1e-3, b / total)) }
            let (mean, variance) = xs.withUnsafeBufferPointer { VectorMath.moments($0.baseAddress!, length) }
            let m = xs.map(Double.init).reduce(0, +) / Double(length)
            XCTAssertEqual(mean, m, accuracy: 1e-12)
            XCTAssertEqual(
                variance, xs.map { (Double($0) - m) * (Double($0) - m) }.reduce(0, +) / Double(length), accuracy: 1e-12)
        }
        // A row whose maximum is not finite is left to the careful path.
        var out: [Float] = [7, 7]
        for row: [Float] in [[-.infinity, -.infinity], [.infinity, 1]] {
            let done = row.withUnsafeBufferPointer { source in
                out.withUnsafeMutableBufferPointer { VectorMath.softmax(source.baseAddress!, $0.baseAddress!, 2) }
            }
            XCTAssertFalse(done)
            XCTAssertEqual(out, [7, 7])
        }
    }

    func testSoftmaxTailsMaskedLanesAndNonFiniteEntries() {
        for length in [3, 13, 50, 197] {
            // -inf and far-below-the-maximum entries weigh 0; the tail's unused lanes add nothing.
            var xs = (0..<length).map { Float($0 % 5) - 2 }
            xs[0] = -.infinity
            xs[length - 1] = -200
            let out = softmaxed(xs)
            XCTAssertEqual(out[0], 0)
            XCTAssertEqual(out[length - 1], 0)
            XCTAssertEqual(out.reduce(0.0) { $0 + Double($1) }, 1, accuracy: 1e-6)
            // In place gives the very same values.
            var inPlace = xs
            let count = inPlace.count
            _ = inPlace.withUnsafeMutableBufferPointer { VectorMath.softmax($0.baseAddress!, $0.baseAddress!, count) }
            XCTAssertEqual(inPlace, out)
            // A NaN entry makes the whole row NaN, as one expf per element would.
            xs[length / 2] = .nan
            XCTAssertTrue(softmaxed(xs).allSatisfy(\.isNaN))
        }
    }

    func testSoftmaxRowsTakeTheCarefulPathOnlyForNonFiniteMaxima() {
        let rows: [[Float]] = [[1, 2, 3], [-.infinity, -.infinity, -.infinity], [.infinity, 1, 2], [4, 5, 6]]
        var data = rows.flatMap { $0 }
        let count = data.count
        data.withUnsafeMutableBufferPointer {
            VectorMath.softmaxRows($0.baseAddress!, $0.baseAddress!, rows: 4, count: 3)
        }
        XCTAssertEqual(count, 12)
        XCTAssertEqual(Array(data[0..<3]), softmaxed(rows[0]))
        XCTAssertEqual(Array(data[9..<12]), softmaxed(rows[3]))
        // e^(−inf − (−inf)) and e^(inf − inf) are NaN, as with one expf per element.
        XCTAssertTrue(data[3..<9].allSatisfy(\.isNaN))
    }

    private func softmaxed(_ xs: [Float]) -> [Float] {
        var out = [Float](repeating: -1, count: xs.count)
        let done = xs.withUnsafeBufferPointer { source in
            out.withUnsafeMutableBufferPointer { VectorMath.softmax(source.baseAddress!, $0.baseAddress!, xs.count) }
        }
        XCTAssertTrue(done)
        return out
    }

    func testGeluIsHalfXTimesOnePlusErf() {
        let xs = sweep(from: -10, to: 10, count: 20_001) + [1e-6, -1e-6]
        let got = apply(xs, VectorMath.gelu)
        for (x, y) in zip(xs, got) {
            let want = 0.5 * Double(x) * (1 + Foundation.erf(Double(x) / 2.0.squareRoot()))
            XCTAssertEqual(Double(y), want, accuracy: 1e-6 * max(1, abs(want)), "x = \(x)")
        }
    }

    func testShiftedExpSumsEveryLengthIncludingTheTail() {
        for length in [1, 7, 8, 9, 50, 197] {
            let xs = (0..<length).map { Float($0 % 13) * 0.7 - 3 }
            var out = [Float](repeating: -1, count: length)
            let sum = xs.withUnsafeBufferPointer { source in
                out.withUnsafeMutableBufferPointer {
                    VectorMath.shiftedExp(source.baseAddress!, $0.baseAddress!, length, shift: 2)
                }
            }
            let want = xs.map { Foundation.exp($0 - 2) }
            for (a, b) in zip(out, want) { XCTAssertEqual(a, b, accuracy: 4 * b.ulp) }
            XCTAssertEqual(sum, want.reduce(0, +), accuracy: 1e-5 * sum)
        }
    }
}
