#ifndef LETHE_GRAM_KERNELS_H
#define LETHE_GRAM_KERNELS_H

/// Float32 Gram products on AVX-512, for the statistics passes: OpenBLAS here runs its AVX2 kernels
/// (the machine pins them), about half of what these cores do. Each output tile holds 6 × 64 (or
/// 8 × 48) floats in registers while the rows stream through in chunks that stay in cache; sums are
/// float32, as in `ssyrk`, and the callers add each block into float64.

/// 1 when this CPU (and its operating system) runs the kernels.
int lethe_gram_available(void);

/// out[i][c] = Σ_r x[r][i] · x[r][j0 + c] for i < m, c < n, over `count` rows of x (row r at
/// x + r·stride); out is row-major with leading dimension ldo. With `upper`, only entries with
/// i ≤ j0 + c are guaranteed (tiles wholly below that diagonal are skipped). Returns 0, or -1 when
/// its scratch memory could not be allocated (out is then incomplete).
int lethe_gram_rows(
    const float *x, long count, long stride, long m, long j0, long n, int upper, float *out, long ldo);

/// The upper triangle of L Lᵀ (d × d, leading dimension ldo) for d lines of `count` floats, line i at
/// lines + i·lineStride: the Gram of rows stored transposed. Returns 0, or -1 as lethe_gram_rows.
int lethe_gram_lines(const float *lines, long count, long lineStride, long d, float *out, long ldo);

/// sums[c] += Σ_r x[r][c] for c < d over `count` rows (row r at x + r·stride), in float64, each
/// column's rows added in order. Returns 0, or -1 (sums untouched) when the CPU lacks AVX-512.
int lethe_column_sums(const float *x, long count, long stride, long d, double *sums);

#endif
