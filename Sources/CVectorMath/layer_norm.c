#include "vector_math.h"

#include <math.h>

#if defined(__x86_64__) && defined(__clang__)
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f")))

static inline AVX512 __mmask16 norm_mask(long left) {
    return left >= 16 ? (__mmask16)0xFFFF : (left <= 0 ? 0 : (__mmask16)((1u << left) - 1));
}

/// Σ of a row's floats (or of their squared deviations from `mean`) in double, sixteen lanes at a time.
static inline AVX512 double norm_sum(const float *x, long count, double mean, int squares) {
    __m512d low = _mm512_setzero_pd(), high = _mm512_setzero_pd();
    __m512d center = _mm512_set1_pd(mean);
    for (long i = 0; i < count; i += 16) {
        __m512 v = _mm512_maskz_loadu_ps(norm_mask(count - i), x + i);
        __m512d a = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
        __m512d b = _mm512_cvtps_pd(_mm512_castps512_ps256(_mm512_shuffle_f32x4(v, v, 0xEE)));
        if (squares) {
            // Lanes past the row are zero, not mean: they are masked out of the squares.
            __mmask8 ma = (__mmask8)(norm_mask(count - i) & 0xFF), mb = (__mmask8)(norm_mask(count - i) >> 8);
            a = _mm512_maskz_sub_pd(ma, a, center);
            b = _mm512_maskz_sub_pd(mb, b, center);
            low = _mm512_fmadd_pd(a, a, low);
            high = _mm512_fmadd_pd(b, b, high);
        } else {
            low = _mm512_add_pd(low, a);
            high = _mm512_add_pd(high, b);
        }
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(low, high));
}

static AVX512 void layer_norm_rows(
    const float *x, float *y, long rows, long inner, const float *scale, const float *bias, double epsilon,
    float *means, float *inverses) {
    for (long r = 0; r < rows; r++) {
        const float *source = x + r * inner;
        float *target = y + r * inner;
        double mean = norm_sum(source, inner, 0, 0) / (double)inner;
        double variance = norm_sum(source, inner, mean, 1) / (double)inner;
        float m = (float)mean, s = (float)(1 / sqrt(variance + epsilon));
        means[r] = m;
        inverses[r] = s;
        __m512 vm = _mm512_set1_ps(m), vs = _mm512_set1_ps(s);
        for (long i = 0; i < inner; i += 16) {
            __mmask16 mask = norm_mask(inner - i);
            __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, source + i), vm), vs);
            v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(mask, scale + i));
            if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, bias + i));
            _mm512_mask_storeu_ps(target + i, mask, v);
        }
    }
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
