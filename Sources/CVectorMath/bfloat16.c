#include "vector_math.h"

#include <immintrin.h>
#include <string.h>

// Round to nearest even, as VCVTNEPS2BF16 does: NaNs stay NaN (quieted), infinities stay infinite,
// and denormal inputs become zeros of their sign (the instruction reads them as zero).
static unsigned short bfloat16_of(float value) {
    unsigned int bits;
    memcpy(&bits, &value, sizeof bits);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((bits >> 16) | 0x40u);
    if ((bits & 0x7f800000u) == 0) return (unsigned short)((bits >> 16) & 0x8000u);
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return (unsigned short)(bits >> 16);
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"), min_vector_width(512)))
static void bfloat16_avx512(const float *source, unsigned short *target, long count) {
    long i = 0;
    for (; i + 32 <= count; i += 32) {
        __m512bh pair = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(source + i + 16), _mm512_loadu_ps(source + i));
        _mm512_storeu_si512((void *)(target + i), (__m512i)pair);
    }
    for (; i < count; i++) target[i] = bfloat16_of(source[i]);
}

int lethe_bfloat16_available(void) {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
}

void lethe_bfloat16_from_float(const float *source, unsigned short *target, long count) {
    if (lethe_bfloat16_available()) {
        bfloat16_avx512(source, target, count);
        return;
    }
    for (long i = 0; i < count; i++) target[i] = bfloat16_of(source[i]);
}
