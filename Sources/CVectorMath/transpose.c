#include "vector_math.h"

#if defined(__x86_64__) && defined(__clang__)
#include "lanes.h"

/// 16 × 16 blocks transposed in registers (pairs unpacked, then 128-bit lanes shuffled), the edges
/// one element at a time.
static AVX512 void transpose_avx512(
    const float *source, long sourceStride, long rows, long columns, float *target, long targetStride) {
    long rows16 = rows / 16 * 16, columns16 = columns / 16 * 16;
    for (long r0 = 0; r0 < rows16; r0 += 16)
        for (long c0 = 0; c0 < columns16; c0 += 16) {
            __m512 a[16], t[16];
            for (int k = 0; k < 16; k++) a[k] = _mm512_loadu_ps(source + (r0 + k) * sourceStride + c0);
            for (int k = 0; k < 16; k += 2) {
                t[k] = _mm512_unpacklo_ps(a[k], a[k + 1]);
                t[k + 1] = _mm512_unpackhi_ps(a[k], a[k + 1]);
            }
            for (int k = 0; k < 16; k += 4) {
                a[k] = _mm512_shuffle_ps(t[k], t[k + 2], 0x44);
                a[k + 1] = _mm512_shuffle_ps(t[k], t[k + 2], 0xEE);
                a[k + 2] = _mm512_shuffle_ps(t[k + 1], t[k + 3], 0x44);
                a[k + 3] = _mm512_shuffle_ps(t[k + 1], t[k + 3], 0xEE);
            }
            for (int k = 0; k < 4; k++) {
                t[k] = _mm512_shuffle_f32x4(a[k], a[k + 4], 0x88);
                t[k + 4] = _mm512_shuffle_f32x4(a[k], a[k + 4], 0xdd);
                t[k + 8] = _mm512_shuffle_f32x4(a[k + 8], a[k + 12], 0x88);
                t[k + 12] = _mm512_shuffle_f32x4(a[k + 8], a[k + 12], 0xdd);
            }
            for (int k = 0; k < 4; k++) {
                a[k] = _mm512_shuffle_f32x4(t[k], t[k + 8], 0x88);
                a[k + 4] = _mm512_shuffle_f32x4(t[k + 4], t[k + 12], 0x88);
                a[k + 8] = _mm512_shuffle_f32x4(t[k], t[k + 8], 0xdd);
                a[k + 12] = _mm512_shuffle_f32x4(t[k + 4], t[k + 12], 0xdd);
            }
            for (int k = 0; k < 16; k++) _mm512_storeu_ps(target + (c0 + k) * targetStride + r0, a[k]);
        }
    for (long r = 0; r < rows; r++)
        for (long c = (r < rows16 ? columns16 : 0); c < columns; c++)
            target[c * targetStride + r] = source[r * sourceStride + c];
}
#endif

void lethe_transpose(const float *source, long sourceStride, long rows, long columns, float *target, long targetStride) {
#if defined(__x86_64__) && defined(__clang__)
    if (__builtin_cpu_supports("avx512f")) {
        transpose_avx512(source, sourceStride, rows, columns, target, targetStride);
        return;
    }
#endif
    for (long r = 0; r < rows; r++)
        for (long c = 0; c < columns; c++) target[c * targetStride + r] = source[r * sourceStride + c];
}

int lethe_avx512_available(void) {
#if defined(__x86_64__) && defined(__clang__)
    return __builtin_cpu_supports("avx512f");
#else
    return 0;
#endif
}
