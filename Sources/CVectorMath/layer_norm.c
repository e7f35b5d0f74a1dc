#include "vector_math.h"

#include <math.h>

#if defined(__x86_64__) && defined(__clang__)
#include <immintrin.h>

#include "lanes.h"

/// Σ of R rows' floats (or of their squared deviations from `mean[r]`) in double, sixteen lanes at a
/// time, into `out`: R rows at once so that their chains of adds overlap (one 64-float row alone
/// waited on its adds for most of its time). Each row's sum is the same whatever R.
static inline __attribute__((always_inline)) AVX512 void norm_sums(
    const float *x, long inner, const double *mean, int squares, double *out, const int R) {
    __m512d low[4], high[4], center[4];
    for (int r = 0; r < R; r++) {
        low[r] = high[r] = _mm512_setzero_pd();
        center[r] = _mm512_set1_pd(squares ? mean[r] : 0);
    }
    for (long i = 0; i < inner; i += 16) {
        __mmask16 mask = lethe_lane_mask(inner - i);
        __mmask8 ma = (__mmask8)(mask & 0xFF), mb = (__mmask8)(mask >> 8);
        for (int r = 0; r < R; r++) {
            __m512 v = _mm512_maskz_loadu_ps(mask, x + r * inner + i);
            __m512d a = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
            __m512d b = _mm512_cvtps_pd(_mm512_castps512_ps256(_mm512_shuffle_f32x4(v, v, 0xEE)));
            if (squares) {
                // Lanes past the row are zero, not the mean: they are masked out of the squares.
                a = _mm512_maskz_sub_pd(ma, a, center[r]);
                b = _mm512_maskz_sub_pd(mb, b, center[r]);
                low[r] = _mm512_fmadd_pd(a, a, low[r]);
                high[r] = _mm512_fmadd_pd(b, b, high[r]);
            } else {
                low[r] = _mm512_add_pd(low[r], a);
                high[r] = _mm512_add_pd(high[r], b);
            }
        }
    }
    for (int r = 0; r < R; r++) out[r] = _mm512_reduce_add_pd(_mm512_add_pd(low[r], high[r]));
}

/// Rows r0..r0+R normalised.
static inline __attribute__((always_inline)) AVX512 void norm_rows(
    const float *x, float *y, long inner, const float *scale, const float *bias, double epsilon, float *means,
    float *inverses, const int R) {
    double mean[4], variance[4];
    norm_sums(x, inner, mean, 0, mean, R);
    for (int r = 0; r < R; r++) mean[r] /= (double)inner;
    norm_sums(x, inner, mean, 1, variance, R);
    for (int r = 0; r < R; r++) {
        const float *source = x + r * inner;
        float *target = y + r * inner;
        float m = (float)mean[r], s = (float)(1 / sqrt(variance[r] / (double)inner + epsilon));
        means[r] = m;
        inverses[r] = s;
        __m512 vm = _mm512_set1_ps(m), vs = _mm512_set1_ps(s);
        for (long i = 0; i < inner; i += 16) {
            __mmask16 mask = lethe_lane_mask(inner - i);
            __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, source + i), vm), vs);
            v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(mask, scale + i));
            if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, bias + i));
            _mm512_mask_storeu_ps(target + i, mask, v);
        }
    }
}

static AVX512 void layer_norm_rows(
    const float *x, float *y, long rows, long inner, const float *scale, const float *bias, double epsilon,
    float *means, float *inverses) {
    long r = 0;
    for (; r + 4 <= rows; r += 4)
        norm_rows(x + r * inner, y + r * inner, inner, scale, bias, epsilon, means + r, inverses + r, 4);
    for (; r < rows; r++)
        norm_rows(x + r * inner, y + r * inner, inner, scale, bias, epsilon, means + r, inverses + r, 1);
}

int lethe_layer_norm_rows(
    const float *x, float *y, long rows, long inner, const float *scale, const float *bias, double epsilon,
    float *means, float *inverses) {
    if (!__builtin_cpu_supports("avx512f")) return -1;
    layer_norm_rows(x, y, rows, inner, scale, bias, epsilon, means, inverses);
    return 0;
}

#else
int lethe_layer_norm_rows(
    const float *x, float *y, long rows, long inner, const float *scale, const float *bias, double epsilon,
    float *means, float *inverses) {
    return -1;
}
#endif
