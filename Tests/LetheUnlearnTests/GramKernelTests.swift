import CGramKernels
import XCTest
@testable import LetheUnlearn

/// The float32 Gram blocks (`LinearAlgebra.gramBlock`, `gramPanel`) against float64 sums, on the
/// widths where the AVX-512 kernels take over from OpenBLAS and past the edges of their tiles
/// (6 rows of 64 columns or 8 of 48, 256-column panels, the 16 × 16 transposes of lines into rows,
/// the widest whole triangle);
/// without AVX-512 the same checks hold OpenBLAS's blocks.
final class GramKernelTests: XCTestCase {
    private func values(_ count: Int, seed: UInt64) -> [Float] {
        TestSupport.randomValues(count, seed: seed).map(Float.init)
    }

    /// Entry (i, j) of XᵀX in float64, X being `count × d`.
    private func exact(_ x: [Float], count: Int, d: Int, _ i: Int, _ j: Int) -> Double {
        var sum = 0.0
        for r in 0..<count { sum += Double(x[r * d + i]) * Double(x[r * d + j]) }
        return sum
    }

    /// float32 sums: error relative to the row norms of the two columns.
    private func check(
        _ got: Float, _ x: [Float], count: Int, d: Int, _ i: Int, _ j: Int, norms: [Double], _ message: String,
        tolerance: Double = 1e-5
    ) {
        let expected = exact(x, count: count, d: d, i, j)
        XCTAssertEqual(
            Double(got), expected, accuracy: tolerance * (norms[i] * norms[j]).squareRoot() + 1e-30, message)
    }

    /// Many rows are summed a chunk at a time, then the chunks, as `ssyrk`'s blocks are: one running
    /// float32 sum over 20,000 rows drifted by about 1e-5 of the norms (the sample CNN's reference
    /// statistics caught it), chunked sums stay near 1e-6.
    func testLongSumsStayBlocked() {
        let d = 64, count = 20_000
        let x = values(count * d, seed: 5).map { abs($0) }
        let norms = (0..<d).map { exact(x, count: count, d: d, $0, $0) }
        var block = [Float](repeating: .nan, count: d * d)
        x.withUnsafeBufferPointer { xp in
            block.withUnsafeMutableBufferPointer {
                LinearAlgebra.gramBlock(rows: xp.baseAddress!, count: count, dimension: d, into: $0.baseAddress!)
            }
        }
        for i in 0..<d {
            for j in i..<d {
                check(block[i * d + j], x, count: count, d: d, i, j, norms: norms, "(\(i), \(j))", tolerance: 3e-6)
            }
        }
    }

    func testGramBlocksFromRowsAndLinesMatchFloat64() {
        for (d, count) in [
            (64, 500), (100, 37), (130, 41), (144, 300), (192, 64), (256, 70), (301, 333), (577, 129), (2305, 9),
            (40, 17)
        ] {
            let x = values(count * d, seed: UInt64(d))
            let norms = (0..<d).map { exact(x, count: count, d: d, $0, $0) }
            var lines = [Float](repeating: 0, count: count * d)
            for r in 0..<count { for i in 0..<d { lines[i * count + r] = x[r * d + i] } }
            var fromRows = [Float](repeating: .nan, count: d * d), fromLines = fromRows
            x.withUnsafeBufferPointer { xp in
                fromRows.withUnsafeMutableBufferPointer {
                    LinearAlgebra.gramBlock(rows: xp.baseAddress!, count: count, dimension: d, into: $0.baseAddress!)
                }
            }
            lines.withUnsafeBufferPointer { lp in
                fromLines.withUnsafeMutableBufferPointer {
                    LinearAlgebra.gramBlock(lines: lp.baseAddress!, count: count, dimension: d, into: $0.baseAddress!)
                }
            }
            // Every upper entry near the edges of tiles and panels, and a spread of the rest.
            let probes = Set([0, 1, 5, 6, 63, 64, 65, 255, 256, 257, d / 2, d - 2, d - 1].filter { $0 < d && $0 >= 0 })
            for i in probes.union(stride(from: 0, to: d, by: max(1, d / 7))) {
                for j in probes.union(stride(from: i, to: d, by: max(1, d / 5))) where j >= i {
                    check(fromRows[i * d + j], x, count: count, d: d, i, j, norms: norms, "rows d \(d) (\(i), \(j))")
                    check(fromLines[i * d + j], x, count: count, d: d, i, j, norms: norms, "lines d \(d) (\(i), \(j))")
                }
            }
        }
    }

    /// A panel is the whole rectangle above its columns' end, as `sgemm` gives it.
    func testGramPanelsMatchFloat64() {
        let d = 2100, count = 75
        let x = values(count * d, seed: 99)
        let norms = (0..<d).map { exact(x, count: count, d: d, $0, $0) }
        for columns in [0..<256, 1792..<2048, 2048..<2100] {
            var block = [Float](repeating: .nan, count: columns.upperBound * columns.count)
            x.withUnsafeBufferPointer { xp in
                block.withUnsafeMutableBufferPointer {
                    LinearAlgebra.gramPanel(
                        rows: xp.baseAddress!, count: count, dimension: d, columns: columns, into: $0.baseAddress!)
                }
            }
            for i in stride(from: 0, to: columns.upperBound, by: 37) + [columns.upperBound - 1] {
                for c in [0, 1, 63, 64, columns.count - 1] where c < columns.count {
                    check(
                        block[i * columns.count + c], x, count: count, d: d, i, columns.lowerBound + c, norms: norms,
                        "panel \(columns) (\(i), \(c))")
                }
            }
        }
    }

    /// The float64 column sums of the statistics (`lethe_column_sums`) are the bits of a scalar loop
    /// adding each column's rows in order onto what the sums held, for widths across its 64-column
    /// groups and 8-lane edges, from a strided block.
    func testColumnSumsAreTheScalarLoopsBits() throws {
        guard lethe_gram_available() != 0 else { throw XCTSkip("no AVX-512 on this CPU") }
        for d in [1, 7, 8, 16, 63, 64, 65, 130, 200] {
            let stride = d + 3, count = 301
            let x = values(count * stride, seed: UInt64(d)).map { $0 * 1000 }
            var expected = values(d, seed: 99).map(Double.init)
            var got = expected
            for r in 0..<count { for c in 0..<d { expected[c] += Double(x[r * stride + c]) } }
            let status = x.withUnsafeBufferPointer { xp in
                got.withUnsafeMutableBufferPointer {
                    lethe_column_sums(xp.baseAddress, count, stride, d, $0.baseAddress)
                }
            }
            XCTAssertEqual(status, 0)
            XCTAssertEqual(got, expected, "width \(d)")
        }
    }
}
