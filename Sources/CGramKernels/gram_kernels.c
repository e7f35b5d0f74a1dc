#include "gram_kernels.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

#define GK_TARGET __attribute__((target("avx512f")))

int lethe_gram_available(void) { return __builtin_cpu_supports("avx512f"); }

/// The rows of each chunk are copied to a buffer whose row stride is not a multiple of 256 bytes
/// (rows 18 kB apart, ResNet-18's 4,608-wide layer, all fell in the same L1 sets and ran at a third
/// of the speed), sized so the chunk stays in L2 across the tiles that read it.
static long buffer_stride(long width) { return (width + 15) / 16 * 16 + 16; }

static long chunk_rows(long stride) {
    long rows = 65536 / stride;
    return rows < 8 ? 8 : (rows > 256 ? 256 : rows);
}

static inline GK_TARGET __mmask16 lane_mask(long remaining) {
    return remaining >= 16 ? (__mmask16)0xFFFF : (remaining <= 0 ? 0 : (__mmask16)((1u << remaining) - 1));
}

/// One tile: rows i0..i0+MR of out, columns c0..c0+width (width ≤ 64, the masks' lanes), over the
/// chunk's `count` rows; starts from zero when `first`, else adds to out. MR is a constant at every
/// call, so the MR × 4 accumulators stay in registers.
static inline __attribute__((always_inline)) GK_TARGET void tile(
    const float *x, long count, long stride, long i0, long j, __mmask16 m0, __mmask16 m1, __mmask16 m2,
    __mmask16 m3, float *out, long ldo, int first, const int MR) {
    __m512 acc[6][4];
    const __mmask16 masks[4] = {m0, m1, m2, m3};
    for (int a = 0; a < MR; a++)
        for (int b = 0; b < 4; b++)
            acc[a][b] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(masks[b], out + a * ldo + 16 * b);
    for (long r = 0; r < count; r++) {
        const float *row = x + r * stride;
        __m512 w[4];
        for (int b = 0; b < 4; b++) w[b] = _mm512_maskz_loadu_ps(masks[b], row + j + 16 * b);
        for (int a = 0; a < MR; a++) {
            __m512 v = _mm512_set1_ps(row[i0 + a]);
            for (int b = 0; b < 4; b++) acc[a][b] = _mm512_fmadd_ps(v, w[b], acc[a][b]);
        }
    }
    for (int a = 0; a < MR; a++)
        for (int b = 0; b < 4; b++) _mm512_mask_storeu_ps(out + a * ldo + 16 * b, masks[b], acc[a][b]);
}

#define GK_ARGS x, count, stride, i0, j, m0, m1, m2, m3, out, ldo, first

static GK_TARGET void tile_rows(
    const float *x, long count, long stride, long i0, long j, __mmask16 m0, __mmask16 m1, __mmask16 m2,
    __mmask16 m3, float *out, long ldo, int first, long rows) {
    switch (rows) {
    case 6: tile(GK_ARGS, 6); break;
    case 5: tile(GK_ARGS, 5); break;
    case 4: tile(GK_ARGS, 4); break;
    case 3: tile(GK_ARGS, 3); break;
    case 2: tile(GK_ARGS, 2); break;
    default: tile(GK_ARGS, 1); break;
    }
}

/// Every tile of out over one chunk of rows.
static GK_TARGET void chunk(
    const float *x, long count, long stride, long m, long j0, long n, int upper, float *out, long ldo, int first) {
    for (long c0 = 0; c0 < n; c0 += 64) {
        long width = n - c0 < 64 ? n - c0 : 64;
        __mmask16 m0 = lane_mask(width), m1 = lane_mask(width - 16), m2 = lane_mask(width - 32),
                  m3 = lane_mask(width - 48);
        long rowsEnd = m;
        if (upper && j0 + c0 + width < rowsEnd) rowsEnd = j0 + c0 + width;
        for (long i0 = 0; i0 < rowsEnd; i0 += 6) {
            long rows = rowsEnd - i0 < 6 ? rowsEnd - i0 : 6;
            tile_rows(x, count, stride, i0, j0 + c0, m0, m1, m2, m3, out + i0 * ldo + c0, ldo, first, rows);
        }
    }
}

static void zero(float *out, long m, long n, long ldo) {
    for (long i = 0; i < m; i++) memset(out + i * ldo, 0, sizeof(float) * n);
}

/// Columns per panel: each panel's outputs (at most m × 256 floats) are what the chunks of rows
/// revisit, so they stay in cache however wide the Gram is (a whole 4,608² triangle did not, and
/// ran at a third of the speed).
#define GK_PANEL 256

GK_TARGET int lethe_gram_rows(
    const float *x, long count, long stride, long m, long j0, long n, int upper, float *out, long ldo) {
    if (m <= 0 || n <= 0) return 0;
    if (count <= 0) {
        zero(out, m, n, ldo);
        return 0;
    }
    long full = m > j0 + n ? m : j0 + n;
    // Every panel's chunk fits: chunk_rows keeps a chunk within 65,536 floats, or 8 rows.
    float *rows = aligned_alloc(64, sizeof(float) * (65536 + 8 * buffer_stride(full)));
    if (!rows) return -1;
    for (long c0 = 0; c0 < n; c0 += GK_PANEL) {
        long width = n - c0 < GK_PANEL ? n - c0 : GK_PANEL;
        long panelRows = upper && j0 + c0 + width < m ? j0 + c0 + width : m;
        long used = panelRows > j0 + c0 + width ? panelRows : j0 + c0 + width;
        long bufferStride = buffer_stride(used), step = chunk_rows(bufferStride);
        for (long r0 = 0; r0 < count; r0 += step) {
            long chunkRows = count - r0 < step ? count - r0 : step;
            for (long r = 0; r < chunkRows; r++)
                memcpy(rows + r * bufferStride, x + (r0 + r) * stride, sizeof(float) * used);
            chunk(rows, chunkRows, bufferStride, panelRows, j0 + c0, width, upper, out + c0, ldo, r0 == 0);
        }
    }
    free(rows);
    return 0;
}

/// Up to this width the whole triangle stays in L3 while chunks of rows pass (2,304² floats: 10 MB of
/// upper triangle), so the lines are turned into rows one chunk at a time; wider ones go through
/// `lethe_gram_rows`'s panels.
#define GK_WIDEST_TRIANGLE 2304

GK_TARGET int lethe_gram_lines(const float *lines, long count, long lineStride, long d, float *out, long ldo) {
    if (d <= 0) return 0;
    if (count <= 0) {
        zero(out, d, d, ldo);
        return 0;
    }
    long stride = buffer_stride(d);
    if (d <= GK_WIDEST_TRIANGLE) {
        long step = chunk_rows(stride);
        float *rows = aligned_alloc(64, sizeof(float) * (65536 + 8 * stride));
        if (!rows) return -1;
        for (long r0 = 0; r0 < count; r0 += step) {
            long n = count - r0 < step ? count - r0 : step;
            for (long i = 0; i < d; i++) {
                const float *line = lines + i * lineStride + r0;
                for (long r = 0; r < n; r++) rows[r * stride + i] = line[r];
            }
            chunk(rows, n, stride, d, 0, d, 1, out, ldo, r0 == 0);
        }
        free(rows);
        return 0;
    }
    float *rows = aligned_alloc(64, sizeof(float) * count * stride + 64);
    if (!rows) return -1;
    for (long r0 = 0; r0 < count; r0 += 16) {
        long n = count - r0 < 16 ? count - r0 : 16;
        for (long i = 0; i < d; i++) {
            const float *line = lines + i * lineStride + r0;
            for (long r = 0; r < n; r++) rows[(r0 + r) * stride + i] = line[r];
        }
    }
    int status = lethe_gram_rows(rows, count, stride, d, 0, d, 1, out, ldo);
    free(rows);
    return status;
}

#else

int lethe_gram_available(void) { return 0; }

int lethe_gram_rows(
    const float *x, long count, long stride, long m, long j0, long n, int upper, float *out, long ldo) {
    (void)x; (void)count; (void)stride; (void)m; (void)j0; (void)n; (void)upper; (void)out; (void)ldo;
    return -1;
}

int lethe_gram_lines(const float *lines, long count, long lineStride, long d, float *out, long ldo) {
    (void)lines; (void)count; (void)lineStride; (void)d; (void)out; (void)ldo;
    return -1;
}

#endif
