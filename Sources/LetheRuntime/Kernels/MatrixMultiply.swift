import CDNNL
import LetheCore
#if canImport(Glibc)
import Glibc
#endif

/// The one place that calls the C matrix-multiply library.
///
/// oneDNN's `dnnl_sgemm` measured ≈ 1.8× OpenBLAS's `cblas_sgemm` on this machine class, so every
/// float32 product goes through it. oneDNN would thread with OpenMP, whose idle workers spin and
/// compete with the runtime's own threads; so each call is single-threaded (`omp_set_num_threads(1)`,
/// found at run time because libgomp is only an indirect dependency) and a large product is split
/// into column or row blocks across the runtime's threads instead.
enum MatrixMultiply {
    private typealias SetThreads = @convention(c) (Int32) -> Void
    private static let setThreadsFunction: SetThreads? = {
        // oneDNN's ITT tracing hooks cost a few percent on the many small products; they read this
        // variable when the library first runs, which is after this point.
        setenv("DNNL_ITT_TASK_LEVEL", "0", 0)
        guard let symbol = dlsym(nil, "omp_set_num_threads") else { return nil }
        return unsafeBitCast(symbol, to: SetThreads.self)
    }()

    /// Row-major `C = alpha · op(A) · op(B) + beta · C` with `op(A)` of `m × k` and `op(B)` of `k × n`.
    static func multiply(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                         a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                         beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            // oneDNN rejects k = 0; the product is empty, so only beta applies.
            for row in 0..<m {
                let line = c + row * ldc
                for col in 0..<n { line[col] = beta == 0 ? 0 : beta * line[col] }
            }
            return
        }
        let work = Double(m) * Double(n) * Double(k)
        let blocks = min(threads, max(n, m) / 32)
        if blocks > 1 && work >= 1_048_576 {
            let shared = UncheckedSendable((a, b, c))
            Parallel.forEach(blocks, threads: blocks) { range in
                let (a, b, c) = shared.value
                for block in range {
                    if n >= m {
                        let lower = n * block / blocks, upper = n * (block + 1) / blocks
                        single(transposeA, transposeB, m, upper - lower, k, alpha, a, lda,
                               transposeB ? b + lower * ldb : b + lower, ldb, beta, c + lower, ldc)
                    } else {
                        let lower = m * block / blocks, upper = m * (block + 1) / blocks
                        single(transposeA, transposeB, upper - lower, n, k, alpha,
                               transposeA ? a + lower : a + lower * lda, lda, b, ldb, beta, c + lower * ldc, ldc)
                    }
                }
            }
            return
        }
        single(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    }

    private static func single(_ transposeA: Bool, _ transposeB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                               _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                               _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        guard m > 0, n > 0 else { return }
        setThreadsFunction?(1)
        let status = dnnl_sgemm(transposeA ? 84 : 78, transposeB ? 84 : 78,
                                dnnl_dim_t(m), dnnl_dim_t(n), dnnl_dim_t(k), alpha,
                                a, dnnl_dim_t(lda), b, dnnl_dim_t(ldb), beta, c, dnnl_dim_t(ldc))
        precondition(status == dnnl_success, "dnnl_sgemm failed with status \(status.rawValue) for \(m)x\(n)x\(k)")
    }
}
