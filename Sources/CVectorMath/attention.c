#include "vector_math.h"
#include "exp_poly.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) && defined(__clang__)
#include <immintrin.h>

#include "lanes.h"

/// exp on sixteen lanes for x ≤ 0 (a softmax's shifted scores): the polynomial of vector_math.c's
/// exp_approx, whose results it matches.
static inline AVX512 __m512 attention_exp(__m512 x) {
    const __m512 magic = _mm512_set1_ps(LETHE_EXP_MAGIC);
    __m512 c = _mm512_max_ps(x, _mm512_set1_ps(LETHE_EXP_LOW));
    __m512 n = _mm512_sub_ps(_mm512_fmadd_ps(c, _mm512_set1_ps(LETHE_EXP_LOG2E), magic), magic);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LETHE_EXP_LN2_HIGH), c);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(LETHE_EXP_LN2_LOW_NEGATED), r);
    __m512 p = _mm512_set1_ps(LETHE_EXP_P0);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(LETHE_EXP_P1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(LETHE_EXP_P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(LETHE_EXP_P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(LETHE_EXP_P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(LETHE_EXP_P5));
    __m512 er = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
    __m512i exponent = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    __m512 result = _mm512_mul_ps(er, _mm512_castsi512_ps(exponent));
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(LETHE_EXP_LOW), _CMP_GE_OQ), result);
}

/// Rows i0..i0+R of one head, with NB vectors of scores (n ≤ 16·NB) and DB vectors of output
/// (d ≤ 16·DB). R, NB and DB are constants at every call, so the R × NB scores and the R × DB × 2
/// outputs stay in registers; R rows share each load of keys and values, and the outputs take two
/// sums per entry (even and odd keys), so that the multiply-adds do not wait on each other.
static inline __attribute__((always_inline)) AVX512 void attention_rows(
    const float *q, long ldq, const float *kt, long ldkt, const float *v, long ldv, float *out, long ldo, long i0,
    long n, long k, float scale, const __mmask16 *nmask, const __mmask16 *dmask, float *rows, long padded,
    const int R, const int NB, const int DB) {
    __m512 s[4][8];
    for (int r = 0; r < R; r++)
        for (int b = 0; b < NB; b++) s[r][b] = _mm512_setzero_ps();
    for (long t = 0; t < k; t++) {
        const float *kr = kt + t * ldkt;
        __m512 keys[8];
        for (int b = 0; b < NB; b++) keys[b] = _mm512_maskz_loadu_ps(nmask[b], kr + 16 * b);
        for (int r = 0; r < R; r++) {
            __m512 x = _mm512_set1_ps(q[(i0 + r) * ldq + t]);
            for (int b = 0; b < NB; b++) s[r][b] = _mm512_fmadd_ps(x, keys[b], s[r][b]);
        }
    }
    const __m512 factor = _mm512_set1_ps(scale), lowest = _mm512_set1_ps(-INFINITY);
    for (int r = 0; r < R; r++) {
        float *row = rows + r * padded;
        __m512 high = lowest;
        for (int b = 0; b < NB; b++) {
            s[r][b] = _mm512_mul_ps(s[r][b], factor);
            high = _mm512_mask_max_ps(high, nmask[b], high, s[r][b]);
        }
        float top = _mm512_reduce_max_ps(high);
        if (isfinite(top)) {
            __m512 shift = _mm512_set1_ps(top), sums = _mm512_setzero_ps();
            for (int b = 0; b < NB; b++) {
                s[r][b] = _mm512_maskz_mov_ps(nmask[b], attention_exp(_mm512_sub_ps(s[r][b], shift)));
                sums = _mm512_add_ps(sums, s[r][b]);
            }
            __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sums));
            for (int b = 0; b < NB; b++) _mm512_storeu_ps(row + 16 * b, _mm512_mul_ps(s[r][b], inv));
        } else {
            // NaN or infinite scores: the reference semantics, element by element.
            for (int b = 0; b < NB; b++) _mm512_storeu_ps(row + 16 * b, s[r][b]);
            lethe_softmax_rows(row, row, 1, n);  // its element-by-element path
        }
    }
    __m512 o[4][4][2];
    for (int r = 0; r < R; r++)
        for (int b = 0; b < DB; b++) o[r][b][0] = o[r][b][1] = _mm512_setzero_ps();
    long j = 0;
    for (; j + 2 <= n; j += 2) {
        for (int u = 0; u < 2; u++) {
            const float *vr = v + (j + u) * ldv;
            __m512 values[4];
            for (int b = 0; b < DB; b++) values[b] = _mm512_maskz_loadu_ps(dmask[b], vr + 16 * b);
            for (int r = 0; r < R; r++) {
                __m512 p = _mm512_set1_ps(rows[r * padded + j + u]);
                for (int b = 0; b < DB; b++) o[r][b][u] = _mm512_fmadd_ps(p, values[b], o[r][b][u]);
            }
        }
    }
    if (j < n) {
        const float *vr = v + j * ldv;
        for (int b = 0; b < DB; b++) {
            __m512 values = _mm512_maskz_loadu_ps(dmask[b], vr + 16 * b);
            for (int r = 0; r < R; r++)
                o[r][b][0] = _mm512_fmadd_ps(_mm512_set1_ps(rows[r * padded + j]), values, o[r][b][0]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int b = 0; b < DB; b++)
            _mm512_mask_storeu_ps(out + (i0 + r) * ldo + 16 * b, dmask[b], _mm512_add_ps(o[r][b][0], o[r][b][1]));
}

/// Every row of one head: in fours while the scores take at most 4 vectors a row, else in twos,
/// and the rest one at a time.
static inline __attribute__((always_inline)) AVX512 void attention_head(
    const float *q, long ldq, const float *kt, long ldkt, const float *v, long ldv, float *out, long ldo,
    long m, long n, long k, long d, float scale, float *rows, long padded, const int NB, const int DB) {
    __mmask16 nmask[8], dmask[4];
    for (int b = 0; b < NB; b++) nmask[b] = lethe_lane_mask(n - 16 * b);
    for (int b = 0; b < DB; b++) dmask[b] = lethe_lane_mask(d - 16 * b);
    const int R = NB <= 4 ? 4 : 2;
    long i = 0;
    for (; i + R <= m; i += R) {
        if (R == 4)
            attention_rows(q, ldq, kt, ldkt, v, ldv, out, ldo, i, n, k, scale, nmask, dmask, rows, padded, 4, NB, DB);
        else
            attention_rows(q, ldq, kt, ldkt, v, ldv, out, ldo, i, n, k, scale, nmask, dmask, rows, padded, 2, NB, DB);
    }
    for (; i < m; i++)
        attention_rows(q, ldq, kt, ldkt, v, ldv, out, ldo, i, n, k, scale, nmask, dmask, rows, padded, 1, NB, DB);
}

/// Keys stored as n rows of k turned into k rows of n, zeros past n up to `padded`, so that a
/// query's scores are k broadcast multiply-adds over whole vectors of keys.
static void pack_keys(const float *keys, long ldk, long n, long k, float *packed, long padded) {
    lethe_transpose(keys, ldk, n, k, packed, padded);
    if (padded > n)
        for (long t = 0; t < k; t++) memset(packed + t * padded + n, 0, sizeof(float) * (size_t)(padded - n));
}

static AVX512 void attention_small(
    const float *q, long ldq, const float *keys, long ldk, int keysTransposed, const float *v, long ldv, float *out,
    long ldo, long m, long n, long k, long d, float scale, float *scratch) {
    long padded = (n + 15) / 16 * 16;
    float *rows = scratch;
    const float *kt = keys;
    long ldkt = ldk;
    if (keysTransposed) {
        float *packed = scratch + 4 * padded;
        pack_keys(keys, ldk, n, k, packed, padded);
        kt = packed;
        ldkt = padded;
    }
    int nb = (int)(padded / 16), db = (int)((d + 15) / 16);
#define LETHE_HEAD(NB, DB) attention_head(q, ldq, kt, ldkt, v, ldv, out, ldo, m, n, k, d, scale, rows, padded, NB, DB)
#define LETHE_HEADS(NB)                                                                                          \
    switch (db) {                                                                                                \
    case 1: LETHE_HEAD(NB, 1); break;                                                                            \
    case 2: LETHE_HEAD(NB, 2); break;                                                                            \
    case 3: LETHE_HEAD(NB, 3); break;                                                                            \
    default: LETHE_HEAD(NB, 4); break;                                                                           \
    }
    switch (nb) {
    case 1: LETHE_HEADS(1); break;
    case 2: LETHE_HEADS(2); break;
    case 3: LETHE_HEADS(3); break;
    case 4: LETHE_HEADS(4); break;
    case 5: LETHE_HEADS(5); break;
    case 6: LETHE_HEADS(6); break;
    case 7: LETHE_HEADS(7); break;
    default: LETHE_HEADS(8); break;
    }
#undef LETHE_HEADS
#undef LETHE_HEAD
}

int lethe_attention_small(
    const float *q, long ldq, const float *keys, long ldk, int keysTransposed, const float *v, long ldv, float *out,
    long ldo, long m, long n, long k, long d, float scale, float *scratch) {
    if (!__builtin_cpu_supports("avx512f") || n < 1 || n > 128 || d < 1 || d > 64 || k < 1 || m < 1) return -1;
    attention_small(q, ldq, keys, ldk, keysTransposed, v, ldv, out, ldo, m, n, k, d, scale, scratch);
    return 0;
}

#else
int lethe_attention_small(
    const float *q, long ldq, const float *keys, long ldk, int keysTransposed, const float *v, long ldv, float *out,
    long ldo, long m, long n, long k, long d, float scale, float *scratch) {
    return -1;
}
#endif
