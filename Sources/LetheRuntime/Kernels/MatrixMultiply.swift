import CBLAS
import CDNNL
import LetheCore

/// The one place that calls the C matrix-multiply library.
///
/// oneDNN's `dnnl_sgemm` measured ≈ 1.8× OpenBLAS's `cblas_sgemm` on this machine class, so every
/// large float32 product goes through it. Each call is single-threaded (see `LibraryThreads`) and a
/// large product is split into column or row blocks across the runtime's threads instead.
enum MatrixMultiply {
    /// Row-major `C = alpha · op(A) · op(B) + beta · C` with `op(A)` of `m × k` and `op(B)` of `k × n`.
    static func multiply(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int
    ) {
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
                        single(
                            transposeA, transposeB, m, upper - lower, k, alpha, a, lda,
                            transposeB ? b + lower * ldb : b + lower, ldb, beta, c + lower, ldc)
                    } else {
                        let lower = m * block / blocks, upper = m * (block + 1) / blocks
                        single(
                            transposeA, transposeB, upper - lower, n, k, alpha,
                            transposeA ? a + lower : a + lower * lda, lda, b, ldb, beta, c + lower * ldc, ldc)
                    }
                }
            }
            return
        }
        single(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    }

    private static func single(
        _ transposeA: Bool, _ transposeB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
        _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
        _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        if m * n * k <= 1 << 20 {
            // Small products (attention heads, late feature maps) go to OpenBLAS: oneDNN 2.6 keeps
            // memory for every small call it serves (≈ 20 kB each, never returned), which grew a ViT
            // run by ~100 MB per batch.
            _ = LibraryThreads.openBLASSingleThreaded
            cblas_sgemm(
                CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
            return
        }
        LibraryThreads.useOpenMP(threads: 1)
        let status = dnnl_sgemm(
            transposeA ? 84 : 78, transposeB ? 84 : 78,
            dnnl_dim_t(m), dnnl_dim_t(n), dnnl_dim_t(k), alpha,
            a, dnnl_dim_t(lda), b, dnnl_dim_t(ldb), beta, c, dnnl_dim_t(ldc))
        precondition(status == dnnl_success, "dnnl_sgemm failed with status \(status.rawValue) for \(m)x\(n)x\(k)")
    }
}
