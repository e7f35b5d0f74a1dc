import CBLAS
import CGramKernels
import LetheCore
import LetheRuntime
import Foundation
import Synchronization

/// The BLAS and LAPACK calls Unlearn makes, in one place (row-major throughout).
enum LinearAlgebra {
    /// `block[i][j] = Σ_r rows[r][i]·rows[r][j]` on the upper triangle (row-major `d × d` float32),
    /// for `count` rows of `dimension` floats, on `syrk` (half the work of a general product). Callers
    /// sum blocks into float64, so rounding stays per block, not per sample count.
    static func gramBlock(
        rows: UnsafePointer<Float>, count: Int, dimension d: Int, into block: UnsafeMutablePointer<Float>
    ) {
        syrk(rows, transposed: true, count: count, dimension: d, into: block)
    }

    /// The same block from rows stored transposed: `lines` holds `dimension` lines of `count` floats,
    /// line `i` being element `i` of every row (`syrk` on `A Aᵀ`).
    static func gramBlock(
        lines: UnsafePointer<Float>, count: Int, dimension d: Int, into block: UnsafeMutablePointer<Float>
    ) {
        syrk(lines, transposed: false, count: count, dimension: d, into: block)
    }

    /// Whether the float32 Gram products run on Lethe's AVX-512 kernels (`CGramKernels`) rather than
    /// OpenBLAS, whose kernels this machine pins to AVX2. Measured on one core against `ssyrk`
    /// (≈ 80–130 GFLOP/s): 1.15–1.35× at 64 columns, 1.4–1.7× at 128–256 (the sample CNN's second
    /// convolution, 144: 1.6×), 1.3–1.9× from 576 to 4,608; slower under 64, where OpenBLAS keeps the
    /// blocks. `LETHE_GRAM_KERNELS=0` turns them off.
    static let gramKernels =
        lethe_gram_available() != 0 && ProcessInfo.processInfo.environment["LETHE_GRAM_KERNELS"] != "0"
    static let gramKernelMinimumWidth = 64

    /// `Aᵀ A` (`transposed`, `A` being `count × d`) or `A Aᵀ` (`A` being `d × count`) into `block`.
    private static func syrk(
        _ a: UnsafePointer<Float>, transposed: Bool, count: Int, dimension d: Int,
        into block: UnsafeMutablePointer<Float>
    ) {
        guard count > 0, d > 0 else { return }
        // The kernels' scratch is a few MB; should it not be had, OpenBLAS recomputes the block.
        if gramKernels, d >= gramKernelMinimumWidth {
            let status =
                transposed
                ? lethe_gram_rows(a, count, d, d, 0, d, 1, block, d) : lethe_gram_lines(a, count, count, d, block, d)
            if status == 0 { return }
        }
        LibraryThreads.keepOpenBLASSingleThreaded()
        cblas_ssyrk(
            CblasRowMajor, CblasUpper, transposed ? CblasTrans : CblasNoTrans, blasint(d), blasint(count),
            1, a, blasint(transposed ? d : count), 0, block, blasint(d))
    }

    /// Rows wider than this get their Gram a column panel at a time (`gramPanel`) instead of as one
    /// square float32 block (16 MB at this width).
    static let widestSquareGram = 2048
    static let gramPanelWidth = 256

    /// `block[i][c] = Σ_r rows[r][i]·rows[r][columns.lowerBound + c]` for `i < columns.upperBound`
    /// (row-major, `columns.count` floats a row): one column panel of the Gram's upper triangle and the
    /// square under it, on `sgemm`.
    static func gramPanel(
        rows: UnsafePointer<Float>, count: Int, dimension d: Int, columns: Range<Int>,
        into block: UnsafeMutablePointer<Float>
    ) {
        guard count > 0, !columns.isEmpty else { return }
        if gramKernels,
            lethe_gram_rows(
                rows, count, d, columns.upperBound, columns.lowerBound, columns.count, 0, block, columns.count) == 0
        {
            return
        }
        LibraryThreads.keepOpenBLASSingleThreaded()
        cblas_sgemm(
            CblasRowMajor, CblasTrans, CblasNoTrans, blasint(columns.upperBound), blasint(columns.count),
            blasint(count), 1, rows, blasint(d), rows + columns.lowerBound, blasint(d), 0, block,
            blasint(columns.count))
    }

    /// `cross[i][j] += Σ_r a[r][i]·b[r][j]` for `count` rows of `dimension` floats each: the block
    /// product in float32 (`sgemm`), summed into the float64 accumulator as the Gram accumulator does.
    static func accumulateCross(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int, dimension d: Int,
        into cross: UnsafeMutablePointer<Double>
    ) {
        guard count > 0, d > 0 else { return }
        let block = UnsafeMutablePointer<Float>.allocate(capacity: d * d)
        defer { block.deallocate() }
        LibraryThreads.keepOpenBLASSingleThreaded()
        cblas_sgemm(
            CblasRowMajor, CblasTrans, CblasNoTrans, blasint(d), blasint(d), blasint(count),
            1, a, blasint(d), b, blasint(d), 0, block, blasint(d))
        for i in 0..<(d * d) { cross[i] += Double(block[i]) }
    }

    /// `X Xᵀ` (`n × n`, both triangles) of `n` rows of `d` doubles, on `dsyrk`.
    static func rowGram(_ x: UnsafePointer<Double>, rows n: Int, dimension d: Int) -> [Double] {
        var k = [Double](repeating: 0, count: n * n)
        guard n > 0, d > 0 else { return k }
        k.withUnsafeMutableBufferPointer { kp in
            parallel {
                cblas_dsyrk(
                    CblasRowMajor, CblasUpper, CblasNoTrans, blasint(n), blasint(d), 1, x, blasint(d), 0,
                    kp.baseAddress, blasint(n))
            }
        }
        symmetrizeFromUpper(&k, dimension: n)
        return k
    }

    /// Copies the upper triangle onto the lower one.
    static func symmetrizeFromUpper(_ matrix: inout [Double], dimension d: Int) {
        matrix.withUnsafeMutableBufferPointer { m in
            for i in 0..<d { for j in (i + 1)..<max(i + 1, d) { m[j * d + i] = m[i * d + j] } }
        }
    }

    /// Eigen-decomposition of a symmetric `d × d` matrix: eigenvalues ascending, and the matrix whose
    /// column `j` is the unit eigenvector of eigenvalue `j`.
    static func symmetricEigen(_ matrix: [Double], dimension d: Int) throws -> (values: [Double], vectors: [Double]) {
        guard d > 0 else { return ([], []) }
        var a = matrix
        var w = [Double](repeating: 0, count: d)
        let info = a.withUnsafeMutableBufferPointer { ap in
            w.withUnsafeMutableBufferPointer { wp in
                parallel {
                    LAPACKE_dsyevd(
                        LAPACK_ROW_MAJOR, CChar(UInt8(ascii: "V")), CChar(UInt8(ascii: "U")),
                        Int32(d), ap.baseAddress, Int32(d), wp.baseAddress)
                }
            }
        }
        guard info == 0 else {
            throw NumericalError("eigen-decomposition of a \(d)×\(d) statistics matrix failed (LAPACK info \(info))")
        }
        return (w, a)
    }

    /// `C = op(A)·op(B)` (+ `beta`·C) in float64, with `A` of `m × k` after `op`, `B` of `k × n`.
    static func multiply(
        _ a: UnsafePointer<Double>, transposeA: Bool = false, _ b: UnsafePointer<Double>, transposeB: Bool = false,
        into c: UnsafeMutablePointer<Double>, m: Int, n: Int, k: Int, alpha: Double = 1, beta: Double = 0
    ) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            if beta == 0 {
                c.update(repeating: 0, count: m * n)
            } else if beta != 1 {
                for i in 0..<(m * n) { c[i] *= beta }
            }
            return
        }
        let lda = transposeA ? m : k
        let ldb = transposeB ? k : n
        parallel {
            cblas_dgemm(
                CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(n))
        }
    }

    /// Solves `A X = B` for symmetric positive definite `A` (`d × d`) and `B` (`d × columns`), both
    /// row-major, by Cholesky factorisation.
    /// `a` and `b` are consumed: a caller that passes a temporary (`ResolventSpace`'s shifted Gram,
    /// 170 MB at d = 4608) has it factored in place instead of copied.
    static func solvePositiveDefinite(
        _ a: consuming [Double], dimension d: Int, _ b: consuming [Double], columns: Int
    ) throws -> [Double] {
        precondition(a.count == d * d && b.count == d * columns)
        guard d > 0, columns > 0 else { return b }
        var factor = consume a
        var x = consume b
        // A symmetric matrix reads the same in either order, so LAPACK factors it in column order
        // where it lies; LAPACKE's row-major entry points would first copy and transpose both A and
        // B (another d² and d × columns doubles, and the time to move them). Column-major A = L Lᵀ
        // leaves, read by rows, A = Uᵀ U with U = Lᵀ in the upper triangle; the two triangular
        // solves then run row-major in place.
        let info = factor.withUnsafeMutableBufferPointer { ap in
            parallel { LAPACKE_dpotrf(LAPACK_COL_MAJOR, CChar(UInt8(ascii: "L")), Int32(d), ap.baseAddress, Int32(d)) }
        }
        guard info == 0 else {
            throw NumericalError("a \(d)×\(d) system is not positive definite (LAPACK info \(info))")
        }
        factor.withUnsafeBufferPointer { ap in
            x.withUnsafeMutableBufferPointer { xp in
                parallel {
                    for transpose in [CblasTrans, CblasNoTrans] {
                        cblas_dtrsm(
                            CblasRowMajor, CblasLeft, CblasUpper, transpose, CblasNonUnit, blasint(d), blasint(columns),
                            1,
                            ap.baseAddress, blasint(d), xp.baseAddress, blasint(columns))
                    }
                }
            }
        }
        return x
    }

    /// The same product on arrays (row-major): `c = alpha·op(a)·op(b) + beta·c`.
    static func multiply(
        _ a: [Double], transposeA: Bool = false, _ b: [Double], transposeB: Bool = false, into c: inout [Double],
        m: Int, n: Int, k: Int, alpha: Double = 1, beta: Double = 0
    ) {
        guard m > 0, n > 0 else { return }
        guard k > 0 else {
            for i in 0..<(m * n) { c[i] = beta == 0 ? 0 : c[i] * beta }
            return
        }
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                c.withUnsafeMutableBufferPointer { cp in
                    multiply(
                        ap.baseAddress!, transposeA: transposeA, bp.baseAddress!, transposeB: transposeB,
                        into: cp.baseAddress!,
                        m: m, n: n, k: k, alpha: alpha, beta: beta)
                }
            }
        }
    }

    /// Threads the float64 products, solves and decompositions above use (`setThreads`); they run
    /// after a pass, so they may take every core (see `LibraryThreads.withOpenBLAS`). The float32
    /// Gram products run single-threaded inside a tap, while the runtime's next steps wait to use the
    /// cores; `GramAccumulator` splits them across `threads` itself, so that no OpenBLAS worker is left
    /// spinning beside the runtime's.
    static var threadCount: Int { threads.load(ordering: .relaxed) }
    private static let threads = Atomic<Int>(max(1, ProcessInfo.processInfo.activeProcessorCount))

    /// Sets the number of threads the calls above use (nil leaves it).
    static func setThreads(_ count: Int?) {
        guard let count, count > 0 else { return }
        threads.store(count, ordering: .relaxed)
    }

    private static func parallel<Result>(_ body: () -> Result) -> Result {
        LibraryThreads.withOpenBLAS(threads: threads.load(ordering: .relaxed), body)
    }
}

/// A numerical routine failed (a LAPACK error code, a non-finite statistic).
public struct NumericalError: LetheError {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
