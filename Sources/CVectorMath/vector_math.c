#include "vector_math.h"
#include "exp_poly.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

// exp: Cody-Waite reduction x = n ln2 + r, Cephes' expf polynomial for e^r, 2^n built in the
// exponent bits (n rounded with the 1.5 * 2^23 trick, so no float-to-int conversion). Written as
// branch-free selects so that the loops below vectorize. Below -87.3 the result is 0, above 88.7
// it is +inf, NaN stays NaN.
static inline float exp_approx(float x) {
    const float magic = LETHE_EXP_MAGIC;
    float c = x < LETHE_EXP_LOW ? LETHE_EXP_LOW : (x > LETHE_EXP_HIGH ? LETHE_EXP_HIGH : x);
    float n = (c * LETHE_EXP_LOG2E + magic) - magic;
    float r = c - n * LETHE_EXP_LN2_HIGH;
    r = r + n * LETHE_EXP_LN2_LOW_NEGATED;
    float p = LETHE_EXP_P0;
    p = p * r + LETHE_EXP_P1;
    p = p * r + LETHE_EXP_P2;
    p = p * r + LETHE_EXP_P3;
    p = p * r + LETHE_EXP_P4;
    p = p * r + LETHE_EXP_P5;
    float er = p * (r * r) + r + 1.0f;
    // 2^128 is out of the exponent's range: take 2^127 and double the result.
    int high = n > 127.0f;
    float biased = (high ? n - 1.0f : n) + magic;
    int32_t bits, magicBits;
    memcpy(&bits, &biased, 4);
    memcpy(&magicBits, &magic, 4);
    int32_t exponent = (bits - magicBits + 127) << 23;
    float scale;
    memcpy(&scale, &exponent, 4);
    float result = er * scale;
    result = high ? result * 2.0f : result;
    result = x < LETHE_EXP_LOW ? 0.0f : result;
    result = x > LETHE_EXP_HIGH ? INFINITY : result;
    return x != x ? x : result;
}

// erf: the odd/even rational approximation on [-4, 4] that Eigen and XLA use; beyond it erf is
// +-1 in float32.
static inline float erf_approx(float input) {
    float x = input < -4.0f ? -4.0f : (input > 4.0f ? 4.0f : input);
    float x2 = x * x;
    float p = x2 * -2.72614225801306e-10f + 2.77068142495902e-08f;
    p = x2 * p + -2.10102402082508e-06f;
    p = x2 * p + -5.69250639462346e-05f;
    p = x2 * p + -7.34990630326855e-04f;
    p = x2 * p + -2.95459980854025e-03f;
    p = x2 * p + -1.60960333262415e-02f;
    p = x * p;
    float q = x2 * -1.45660718464996e-05f + -2.13374055278905e-04f;
    q = x2 * q + -1.68282697438203e-03f;
    q = x2 * q + -7.37332916720468e-03f;
    q = x2 * q + -1.42647390514189e-02f;
    float result = p / q;
    return input != input ? input : result;
}

// tanh: odd. Below 0.4 in magnitude, its Taylor series to x^13 (the next term is under 1e-8 of
// the result there); above, 1 - 2 / (e^{2|x|} + 1), whose cancellation costs at most 1.6x there, and
// reaches 1 exactly as e^{2|x|} overflows. NaN stays NaN.
static inline float tanh_approx(float input) {
    float a = input < 0 ? -input : input;
    float a2 = a * a;
    float p = a2 * (21844.0f / 6081075.0f) + (-1382.0f / 155925.0f);
    p = a2 * p + (62.0f / 2835.0f);
    p = a2 * p + (-17.0f / 315.0f);
    p = a2 * p + (2.0f / 15.0f);
    p = a2 * p + (-1.0f / 3.0f);
    float small = a + a * a2 * p;
    float large = 1.0f - 2.0f / (exp_approx(2.0f * a) + 1.0f);
    float result = a < 0.4f ? small : large;
    result = input < 0 ? -result : result;
    return input != input ? input : result;
}

// Each kernel is compiled three times, for AVX-512, for AVX2+FMA and for the baseline, and picked
// once per call.
#define LETHE_KERNELS(suffix, attributes)                                                          \
    attributes static void shifted_exp_##suffix(const float *source, float *target, long count,    \
                                                float shift) {                                     \
        for (long i = 0; i < count; i++) target[i] = exp_approx(source[i] - shift);                \
    }                                                                                              \
    attributes static void exp_##suffix(float *data, long count) {                                 \
        for (long i = 0; i < count; i++) data[i] = exp_approx(data[i]);                            \
    }                                                                                              \
    attributes static void erf_##suffix(float *data, long count) {                                 \
        for (long i = 0; i < count; i++) data[i] = erf_approx(data[i]);                            \
    }                                                                                              \
    attributes static void tanh_##suffix(float *data, long count) {                                \
        for (long i = 0; i < count; i++) data[i] = tanh_approx(data[i]);                           \
    }                                                                                              \
    attributes static void gelu_##suffix(float *data, long count) {                                \
        for (long i = 0; i < count; i++) {                                                         \
            float x = data[i];                                                                     \
            data[i] = 0.5f * x * (1.0f + erf_approx(x * 0.70710678118654752f));                    \
        }                                                                                          \
    }                                                                                              \
    attributes static float max_##suffix(const float *data, long count) {                         \
        float lanes[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY,                              \
                          -INFINITY, -INFINITY, -INFINITY, -INFINITY};                             \
        long i = 0;                                                                                \
        for (; i + 8 <= count; i += 8)                                                             \
            for (int j = 0; j < 8; j++) lanes[j] = data[i + j] > lanes[j] ? data[i + j] : lanes[j]; \
        float high = -INFINITY;                                                                    \
        for (; i < count; i++) high = data[i] > high ? data[i] : high;                             \
        for (int j = 0; j < 8; j++) high = lanes[j] > high ? lanes[j] : high;                      \
        return high;                                                                               \
    }                                                                                              \
    attributes static void scale_##suffix(float *data, long count, float factor) {                 \
        for (long i = 0; i < count; i++) data[i] *= factor;                                        \
    }                                                                                              \
    attributes static void moments_##suffix(const float *data, long count, double *mean,           \
                                            double *variance) {                                    \
        double lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                                \
        long i = 0;                                                                                \
        for (; i + 8 <= count; i += 8)                                                             \
            for (int j = 0; j < 8; j++) lanes[j] += (double)data[i + j];                           \
        double sum = 0;                                                                            \
        for (; i < count; i++) sum += (double)data[i];                                             \
        for (int j = 0; j < 8; j++) sum += lanes[j];                                               \
        double m = sum / (double)count;                                                            \
        double squares[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                              \
        for (i = 0; i + 8 <= count; i += 8)                                                        \
            for (int j = 0; j < 8; j++) {                                                          \
                double d = (double)data[i + j] - m;                                                \
                squares[j] += d * d;                                                               \
            }                                                                                      \
        double total = 0;                                                                          \
        for (; i < count; i++) { double d = (double)data[i] - m; total += d * d; }                 \
        for (int j = 0; j < 8; j++) total += squares[j];                                           \
        *mean = m;                                                                                 \
        *variance = total / (double)count;                                                         \
    }                                                                                              \
    attributes static float sum_##suffix(const float *data, long count) {                         \
        float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                                 \
        long i = 0;                                                                                \
        for (; i + 8 <= count; i += 8)                                                             \
            for (int j = 0; j < 8; j++) lanes[j] += data[i + j];                                   \
        float sum = 0;                                                                             \
        for (; i < count; i++) sum += data[i];                                                     \
        for (int j = 0; j < 8; j++) sum += lanes[j];                                               \
        return sum;                                                                                \
    }

#if defined(__x86_64__) && defined(__clang__)
LETHE_KERNELS(avx2, __attribute__((target("avx2,fma"))))
// 512-bit vectors (min_vector_width lets the vectorizer use them): twice the lanes for the
// transformer's GELU, exp and tanh; lane for lane the same arithmetic, so the same results.
LETHE_KERNELS(avx512, __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,fma"), min_vector_width(512))))
// __builtin_cpu_supports reads the CPU model the runtime fills in before main: no caching (and
// so no race between threads asking at once) is needed.
static int has_avx2(void) { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
static int has_avx512(void) {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
}
#define DISPATCH(name, ...)                                                                        \
    (has_avx512() ? name##_avx512(__VA_ARGS__)                                                     \
                  : (has_avx2() ? name##_avx2(__VA_ARGS__) : name##_base(__VA_ARGS__)))
#else
#define DISPATCH(name, ...) name##_base(__VA_ARGS__)
#endif
LETHE_KERNELS(base, )

float lethe_shifted_exp(const float *source, float *target, long count, float shift) {
    DISPATCH(shifted_exp, source, target, count, shift);
    return DISPATCH(sum, target, count);
}

#if defined(__x86_64__) && defined(__clang__)
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))

// exp_approx on eight lanes, for x <= 0 or NaN (a softmax's shifted scores): no overflow branch.
AVX2 static inline __m256 exp_nonpositive_avx2(__m256 x) {
    const __m256 magic = _mm256_set1_ps(LETHE_EXP_MAGIC);
    __m256 c = _mm256_max_ps(x, _mm256_set1_ps(LETHE_EXP_LOW));
    __m256 n = _mm256_sub_ps(_mm256_fmadd_ps(c, _mm256_set1_ps(LETHE_EXP_LOG2E), magic), magic);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LETHE_EXP_LN2_HIGH), c);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(LETHE_EXP_LN2_LOW_NEGATED), r);
    __m256 p = _mm256_set1_ps(LETHE_EXP_P0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(LETHE_EXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(LETHE_EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(LETHE_EXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(LETHE_EXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(LETHE_EXP_P5));
    __m256 er = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    __m256i exponent = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    __m256 result = _mm256_mul_ps(er, _mm256_castsi256_ps(exponent));
    result = _mm256_andnot_ps(_mm256_cmp_ps(x, _mm256_set1_ps(LETHE_EXP_LOW), _CMP_LT_OQ), result);
    return _mm256_blendv_ps(result, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

AVX2 static inline float horizontal_sum_avx2(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2 static inline float horizontal_max_avx2(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// The lanes of a vector of eight that a row's last `left` (< 8) floats fill.
AVX2 static inline __m256i tail_mask_avx2(long left) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)left), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// The whole row in vectors of eight, its tail masked: an attention row (50 or 197 scores) used to
// spend as long on its scalar tail and the separate max, exp, sum and scale calls as on the rest.
// The tail is loaded once and written with scalar stores at the end: a masked store is not
// forwarded to a later load of the same (or, in place, the next row's) bytes, which stalled every row.
AVX2 static int softmax_avx2(const float *source, float *target, long count) {
    long full = count & ~7L, left = count - full;
    __m256i mask = tail_mask_avx2(left);
    const __m256 lowest = _mm256_set1_ps(-INFINITY);
    __m256 highs = lowest;
    // Comparisons as in max_base: NaN never wins.
    for (long i = 0; i < full; i += 8) {
        __m256 v = _mm256_loadu_ps(source + i);
        highs = _mm256_blendv_ps(highs, v, _mm256_cmp_ps(v, highs, _CMP_GT_OQ));
    }
    __m256 tail = _mm256_blendv_ps(lowest, _mm256_maskload_ps(source + full, mask), _mm256_castsi256_ps(mask));
    highs = _mm256_blendv_ps(highs, tail, _mm256_cmp_ps(tail, highs, _CMP_GT_OQ));
    float high = horizontal_max_avx2(highs);
    if (!isfinite(high)) return -1;
    __m256 shift = _mm256_set1_ps(high), sums = _mm256_setzero_ps();
    for (long i = 0; i < full; i += 8) {
        __m256 e = exp_nonpositive_avx2(_mm256_sub_ps(_mm256_loadu_ps(source + i), shift));
        _mm256_storeu_ps(target + i, e);
        sums = _mm256_add_ps(sums, e);
    }
    // The tail's unused lanes hold -inf, whose exp is 0.
    __m256 tailExp = exp_nonpositive_avx2(_mm256_sub_ps(tail, shift));
    sums = _mm256_add_ps(sums, tailExp);
    __m256 factor = _mm256_set1_ps(1.0f / horizontal_sum_avx2(sums));
    for (long i = 0; i < full; i += 8) _mm256_storeu_ps(target + i, _mm256_mul_ps(_mm256_loadu_ps(target + i), factor));
    float scaled[8];
    _mm256_storeu_ps(scaled, _mm256_mul_ps(tailExp, factor));
    for (long i = 0; i < left; i++) target[full + i] = scaled[i];
    return 0;
}
#endif

// One expf per element, for a row whose maximum is not finite (the runtime's reference semantics:
// NaN entries never win the maximum; an infinite maximum makes NaNs as e^(inf - inf) does).
static void softmax_careful(const float *source, float *target, long count) {
    float high = -INFINITY;
    for (long j = 0; j < count; j++) high = source[j] > high ? source[j] : high;
    float sum = 0;
    for (long j = 0; j < count; j++) {
        float e = expf(source[j] - high);
        target[j] = e;
        sum += e;
    }
    float inv = 1 / sum;
    for (long j = 0; j < count; j++) target[j] *= inv;
}

void lethe_softmax_rows(const float *source, float *target, long rows, long count) {
    for (long row = 0; row < rows; row++) {
        const float *s = source + row * count;
        float *t = target + row * count;
        if (lethe_softmax(s, t, count) != 0) softmax_careful(s, t, count);
    }
}

int lethe_softmax(const float *source, float *target, long count) {
#if defined(__x86_64__) && defined(__clang__)
    if (has_avx2()) return softmax_avx2(source, target, count);
#endif
    float high = DISPATCH(max, source, count);
    if (!isfinite(high)) return -1;
    DISPATCH(shifted_exp, source, target, count, high);
    DISPATCH(scale, target, count, 1.0f / DISPATCH(sum, target, count));
    return 0;
}

void lethe_moments(const float *data, long count, double *mean, double *variance) {
    DISPATCH(moments, data, count, mean, variance);
}

void lethe_exp(float *data, long count) { DISPATCH(exp, data, count); }

void lethe_erf(float *data, long count) { DISPATCH(erf, data, count); }

void lethe_gelu(float *data, long count) { DISPATCH(gelu, data, count); }

void lethe_tanh(float *data, long count) { DISPATCH(tanh, data, count); }
