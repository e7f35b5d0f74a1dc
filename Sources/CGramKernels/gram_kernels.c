#include "gram_kernels.h"
#include "vector_math.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

#define GK_TARGET __attribute__((target("avx512f")))

int lethe_gram_available(void) { return lethe_avx512_available(); }

/// The rows of each chunk are copied to a buffer whose row stride is a whole number of cache lines but
/// not of 256 bytes (rows 18 kB apart, ResNet-18's 4,608-wide layer, all fell in the same L1 sets and
/// ran at a third of the speed), sized so the chunk stays in L2 across the tiles that read it.
static long buffer_stride(long width) {
    long stride = (width + 15) / 16 * 16;
    return stride % 64 == 0 ? stride + 16 : stride;
}

static long chunk_rows(long stride) {
    long rows = 65536 / stride;
    return rows < 8 ? 8 : (rows > 256 ? 256 : rows);
}

static inline GK_TARGET __mmask16 lane_mask(long remaining) {
    return remaining >= 16 ? (__mmask16)0xFFFF : (remaining <= 0 ? 0 : (__mmask16)((1u << remaining) - 1));
}

/// One tile: rows i0..i0+MR of out, columns c0..c0+width (width ≤ 16·NB, the masks' lanes), over
/// the chunk's `count` rows; writes the chunk's sums when `first`, else adds them to out. Summing each
/// chunk apart and then the chunks (as `ssyrk`'s blocks do) keeps float32 rounding at about
/// (chunk + chunks) ulps rather than one running sum's row count. MR and NB are constants at every
/// call, so the MR × NB accumulators (at most 24) stay in registers.
static inline __attribute__((always_inline)) GK_TARGET void tile(
    const float *x, long count, long stride, long i0, long j, const __mmask16 *masks, float *out, long ldo,
    int first, const int MR, const int NB) {
    __m512 acc[8][4];
    for (int a = 0; a < MR; a++)
        for (int b = 0; b < NB; b++) acc[a][b] = _mm512_setzero_ps();
    for (long r = 0; r < count; r++) {
        const float *row = x + r * stride;
        __m512 w[4];
        for (int b = 0; b < NB; b++) w[b] = _mm512_maskz_loadu_ps(masks[b], row + j + 16 * b);
        for (int a = 0; a < MR; a++) {
            __m512 v = _mm512_set1_ps(row[i0 + a]);
            for (int b = 0; b < NB; b++) acc[a][b] = _mm512_fmadd_ps(v, w[b], acc[a][b]);
        }
    }
    for (int a = 0; a < MR; a++)
        for (int b = 0; b < NB; b++) {
            float *target = out + a * ldo + 16 * b;
            __m512 sum = first ? acc[a][b] : _mm512_add_ps(_mm512_maskz_loadu_ps(masks[b], target), acc[a][b]);
            _mm512_mask_storeu_ps(target, masks[b], sum);
        }
}

#define GK_ARGS x, count, stride, i0, j, masks, out, ldo, first

#define GK_ROWS(NB, ...)                                                                                         \
    switch (rows) {                                                                                              \
    __VA_ARGS__                                                                                                  \
    case 5: tile(GK_ARGS, 5, NB); break;                                                                         \
    case 4: tile(GK_ARGS, 4, NB); break;                                                                         \
    case 3: tile(GK_ARGS, 3, NB); break;                                                                         \
    case 2: tile(GK_ARGS, 2, NB); break;                                                                         \
    default: tile(GK_ARGS, 1, NB); break;                                                                        \
    }
#define GK_UP_TO_8(NB)                                                                                           \
    case 8: tile(GK_ARGS, 8, NB); break;                                                                         \
    case 7: tile(GK_ARGS, 7, NB); break;                                                                         \
    case 6: tile(GK_ARGS, 6, NB); break;

/// 6 rows of 64 columns, or 8 rows of 48 (widths such as 144 that 64 divides badly). Inlined into
/// `chunk`: called, it cost a call and a `vzeroupper` a tile, and a chunk is only 8 to a few hundred
/// rows (65,536 floats), so ResNet-18's statistics at 224² ran 5 % longer.
static inline __attribute__((always_inline)) GK_TARGET void tile_rows(
    const float *x, long count, long stride, long i0, long j, const __mmask16 *masks, float *out, long ldo,
    int first, long rows, int vectors) {
    if (vectors == 3) {
        GK_ROWS(3, GK_UP_TO_8(3))
    } else {
        GK_ROWS(4, case 6: tile(GK_ARGS, 6, 4); break;)
    }
}

/// A tile on the diagonal of an upper triangle with its leading vectors dropped: 1 or 2 vectors of
/// up to 8 rows, or 3 of up to 6 (the rest of a 4-vector tile); called, not inlined, as only tiles on
/// the diagonal take it.
static GK_TARGET void trimmed_tile_rows(
    const float *x, long count, long stride, long i0, long j, const __mmask16 *masks, float *out, long ldo,
    int first, long rows, int vectors) {
    switch (vectors) {
    case 3: GK_ROWS(3, GK_UP_TO_8(3)) break;
    case 2: GK_ROWS(2, GK_UP_TO_8(2)) break;
    default: GK_ROWS(1, GK_UP_TO_8(1)) break;
    }
}

/// Every tile of out over one chunk of rows, in the tile shape that leaves fewer empty lanes. With
/// `upper`, tiles wholly below the diagonal are skipped, and so are the vectors of a tile that lie
/// below it for all the tile's rows (a 64-wide Gram then computes 63 % of its square, not all of it).
static GK_TARGET void chunk(
    const float *x, long count, long stride, long m, long j0, long n, int upper, float *out, long ldo, int first) {
    const int vectors = (n + 47) / 48 * 48 < (n + 63) / 64 * 64 ? 3 : 4;
    const long tileWidth = 16 * vectors, tileRows = vectors == 3 ? 8 : 6;
    for (long c0 = 0; c0 < n; c0 += tileWidth) {
        long width = n - c0 < tileWidth ? n - c0 : tileWidth;
        __mmask16 masks[4] = {lane_mask(width), lane_mask(width - 16), lane_mask(width - 32), lane_mask(width - 48)};
        long rowsEnd = m;
        if (upper && j0 + c0 + width < rowsEnd) rowsEnd = j0 + c0 + width;
        for (long i0 = 0; i0 < rowsEnd; i0 += tileRows) {
            long rows = rowsEnd - i0 < tileRows ? rowsEnd - i0 : tileRows;
            int skip = 0;
            while (upper && skip < vectors - 1 && j0 + c0 + 16 * (skip + 1) <= i0) skip++;
            if (skip == 0)
                tile_rows(x, count, stride, i0, j0 + c0, masks, out + i0 * ldo + c0, ldo, first, rows, vectors);
            else
                trimmed_tile_rows(
                    x, count, stride, i0, j0 + c0 + 16 * skip, masks + skip, out + i0 * ldo + c0 + 16 * skip, ldo,
                    first, rows, vectors - skip);
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
        // Rows already at such a stride (lines turned into rows, or widths like 144) are read in place.
        int inPlace = stride == buffer_stride(stride);
        long bufferStride = inPlace ? stride : buffer_stride(used), step = chunk_rows(bufferStride);
        for (long r0 = 0; r0 < count; r0 += step) {
            long chunkRows = count - r0 < step ? count - r0 : step;
            const float *source = x + r0 * stride;
            if (!inPlace) {
                for (long r = 0; r < chunkRows; r++)
                    memcpy(rows + r * bufferStride, source + r * stride, sizeof(float) * used);
                source = rows;
            }
            chunk(source, chunkRows, bufferStride, panelRows, j0 + c0, width, upper, out + c0, ldo, r0 == 0);
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
            lethe_transpose(lines + r0, lineStride, d, n, rows, stride);
            chunk(rows, n, stride, d, 0, d, 1, out, ldo, r0 == 0);
        }
        free(rows);
        return 0;
    }
    float *rows = aligned_alloc(64, sizeof(float) * count * stride + 64);
    if (!rows) return -1;
    lethe_transpose(lines, lineStride, d, count, rows, stride);
    int status = lethe_gram_rows(rows, count, stride, d, 0, d, 1, out, ldo);
    free(rows);
    return status;
}

/// Column sums of 64 columns at a time, in eight float64 vectors; each lane adds its column's rows
/// in row order, as a scalar loop does, so the sums are the same bits.
static GK_TARGET void column_sums(const float *x, long count, long stride, long d, double *sums) {
    for (long c0 = 0; c0 < d; c0 += 64) {
        long width = d - c0 < 64 ? d - c0 : 64;
        __mmask16 floats[4];
        __mmask8 doubles[8];
        for (int b = 0; b < 4; b++) floats[b] = lane_mask(width - 16 * b);
        for (int g = 0; g < 8; g++) {
            long left = width - 8 * g;
            doubles[g] = left >= 8 ? (__mmask8)0xFF : (left <= 0 ? 0 : (__mmask8)((1u << left) - 1));
        }
        __m512d acc[8];
        for (int g = 0; g < 8; g++) acc[g] = _mm512_maskz_loadu_pd(doubles[g], sums + c0 + 8 * g);
        for (long r = 0; r < count; r++) {
            const float *row = x + r * stride + c0;
            for (int b = 0; b < 4; b++) {
                __m512 f = _mm512_maskz_loadu_ps(floats[b], row + 16 * b);
                acc[2 * b] = _mm512_add_pd(acc[2 * b], _mm512_cvtps_pd(_mm512_castps512_ps256(f)));
                __m512 high = _mm512_shuffle_f32x4(f, f, 0xEE);
                acc[2 * b + 1] = _mm512_add_pd(acc[2 * b + 1], _mm512_cvtps_pd(_mm512_castps512_ps256(high)));
            }
        }
        for (int g = 0; g < 8; g++) _mm512_mask_storeu_pd(sums + c0 + 8 * g, doubles[g], acc[g]);
    }
}

int lethe_column_sums(const float *x, long count, long stride, long d, double *sums) {
    if (!lethe_gram_available()) return -1;
    column_sums(x, count, stride, d, sums);
    return 0;
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

int lethe_column_sums(const float *x, long count, long stride, long d, double *sums) {
    (void)x; (void)count; (void)stride; (void)d; (void)sums;
    return -1;
}

#endif
