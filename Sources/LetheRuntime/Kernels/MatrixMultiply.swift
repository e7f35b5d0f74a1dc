import CDNNL
#if canImport(Glibc)
import Glibc
#endif

/// The one place that calls the C matrix-multiply library.
///
/// oneDNN's `dnnl_sgemm` measured ≈ 1.8× OpenBLAS's `cblas_sgemm` on this machine class, so every
/// float32 product goes through it. oneDNN threads with OpenMP; the number of threads is set per
/// calling thread through `omp_set_num_threads`, found at run time because libgomp is only an
/// indirect dependency.
enum MatrixMultiply {
    private typealias SetThreads = @convention(c) (Int32) -> Void
    private static let setThreadsFunction: SetThreads? = {
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
        setThreadsFunction?(Int32(max(1, threads)))
        let status = dnnl_sgemm(transposeA ? 84 : 78, transposeB ? 84 : 78,
                                dnnl_dim_t(m), dnnl_dim_t(n), dnnl_dim_t(k), alpha,
                                a, dnnl_dim_t(lda), b, dnnl_dim_t(ldb), beta, c, dnnl_dim_t(ldc))
        precondition(status == dnnl_success, "dnnl_sgemm failed with status \(status.rawValue) for \(m)x\(n)x\(k)")
    }
}
