import Foundation
import XCTest
@testable import LetheRuntime

/// The register kernel for short attention heads (`VectorMath.attentionHead`) against a float64
/// computation, over the sizes that change its code path: score vectors 1–8 (rows in fours or twos),
/// output vectors 1–4 with tails, keys in either layout, strided rows.
final class SmallAttentionTests: XCTestCase {
    private struct Head {
        let m, n, k, d: Int
        let ldq, ldk, ldv, ldo: Int
        let transposedKeys: Bool
        var q: [Float], keys: [Float], v: [Float]

        init(m: Int, n: Int, k: Int, d: Int, transposedKeys: Bool, seed: UInt64) {
            (self.m, self.n, self.k, self.d, self.transposedKeys) = (m, n, k, d, transposedKeys)
            ldq = k + 3
            ldk = (transposedKeys ? k : n) + 5
            ldv = d + 2
            ldo = d + 7
            q = randomFloats(m * ldq, seed: seed).map { $0 * 2 }
            keys = randomFloats((transposedKeys ? n : k) * ldk, seed: seed + 1).map { $0 * 2 }
            v = randomFloats(n * ldv, seed: seed + 2)
        }

        func key(_ t: Int, _ j: Int) -> Float { transposedKeys ? keys[j * ldk + t] : keys[t * ldk + j] }

        /// Scores `scale · q K` of row i in float64.
        func scores(_ i: Int, scale: Float) -> [Double] {
            (0..<n).map { j in Double(scale) * (0..<k).reduce(0.0) { $0 + Double(q[i * ldq + $1]) * Double(key($1, j)) }
            }
        }

        /// Runs the kernel; nil when it declines.
        func run(scale: Float) -> [Float]? {
            var out = [Float](repeating: .nan, count: m * ldo)
            var scratch = [Float](repeating: 0, count: VectorMath.attentionScratch(n: n, k: k))
            let done = q.withUnsafeBufferPointer { q in
                keys.withUnsafeBufferPointer { keys in
                    v.withUnsafeBufferPointer { v in
                        out.withUnsafeMutableBufferPointer { out in
                            scratch.withUnsafeMutableBufferPointer { scratch in
                                VectorMath.attentionHead(
                                    queries: q.baseAddress!, ldq, keys: keys.baseAddress!, ldk,
                                    keysTransposed: transposedKeys, values: v.baseAddress!, ldv, into: out.baseAddress!,
                                    ldo, m: m, n: n, k: k, d: d, scale: scale, scratch: scratch.baseAddress!)
                            }
                        }
                    }
                }
            }
            return done ? out : nil
        }
    }

    func testHeadsOfEveryShapeMatchFloat64() throws {
        guard Head(m: 1, n: 1, k: 1, d: 1, transposedKeys: false, seed: 1).run(scale: 1) != nil else {
            throw XCTSkip("no AVX-512 on this CPU")
        }
        var seed: UInt64 = 10
        for (m, n, k, d) in [
            (50, 50, 16, 16), (7, 65, 32, 33), (5, 1, 3, 1), (9, 128, 64, 64), (13, 17, 5, 48),
            (2, 100, 16, 20)
        ] {
            for transposed in [false, true] {
                seed += 3
                let head = Head(m: m, n: n, k: k, d: d, transposedKeys: transposed, seed: seed)
                let out = try XCTUnwrap(head.run(scale: 0.25), "\(m) \(n) \(k) \(d)")
                for i in 0..<m {
                    let s = head.scores(i, scale: 0.25)
                    let top = s.max()!
                    let e = s.map { Foundation.exp($0 - top) }
                    let total = e.reduce(0, +)
                    for c in 0..<d {
                        let expected = (0..<n).reduce(0.0) { $0 + e[$1] / total * Double(head.v[$1 * head.ldv + c]) }
                        XCTAssertEqual(
                            Double(out[i * head.ldo + c]), expected, accuracy: 2e-6,
                            "m \(m) n \(n) k \(k) d \(d) keys transposed \(transposed): [\(i), \(c)]")
                    }
                    // The padding between output rows is left alone.
                    XCTAssertTrue(out[i * head.ldo + head.d].isNaN, "padding written")
                }
            }
        }
    }

    /// Rows whose scores have no finite maximum come out as `softmaxRows` makes them: an infinite
    /// score takes the whole weight (NaN where two are infinite), a NaN score makes the row NaN.
    func testRowsWithoutAFiniteMaximumFollowTheReferenceSoftmax() throws {
        var head = Head(m: 6, n: 20, k: 4, d: 3, transposedKeys: false, seed: 40)
        guard head.run(scale: 1) != nil else { throw XCTSkip("no AVX-512 on this CPU") }
        head.q[1 * head.ldq] = .infinity // row 1: scores ±inf where the key's first entry is ±
        head.q[3 * head.ldq + 2] = .nan // row 3: every score NaN
        let out = try XCTUnwrap(head.run(scale: 1))
        for i in 0..<head.m {
            var scores = head.scores(i, scale: 1).map { Float($0) }
            VectorMath.softmaxRows(scores, &scores, rows: 1, count: head.n)
            for c in 0..<head.d {
                let expected = (0..<head.n).reduce(Float(0)) { $0 + scores[$1] * head.v[$1 * head.ldv + c] }
                let got = out[i * head.ldo + c]
                if expected.isNaN {
                    XCTAssertTrue(got.isNaN, "[\(i), \(c)]")
                } else {
                    XCTAssertEqual(got, expected, accuracy: 1e-5, "[\(i), \(c)]")
                }
            }
        }
        XCTAssertTrue(out[3 * head.ldo].isNaN)
    }

    func testLongSequencesAndWideHeadsAreDeclined() {
        XCTAssertNil(Head(m: 2, n: 129, k: 4, d: 4, transposedKeys: false, seed: 1).run(scale: 1))
        XCTAssertNil(Head(m: 2, n: 8, k: 4, d: 65, transposedKeys: true, seed: 1).run(scale: 1))
    }
}
