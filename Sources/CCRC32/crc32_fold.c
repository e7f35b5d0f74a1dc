#include "crc32_fold.h"

#if defined(__x86_64__) && defined(__clang__)
#include <immintrin.h>

#define FOLD __attribute__((target("avx512f,vpclmulqdq")))

// The constants of a fold over D bits: x^(D+32) mod P for the low 64 bits of each 128-bit lane
// and x^(D−32) mod P for the high ones (P = zip's 0x104C11DB7), bit reflected and shifted left
// once; computed by reducing the powers of x. The 512- and 128-bit pairs are those of Intel's
// white paper on CRC folding.
static inline FOLD __m128i constants(unsigned long long low, unsigned long long high) {
    return _mm_set_epi64x((long long)high, (long long)low);
}

/// `x` moved forward over the distance of `k` and added to `next`.
static inline FOLD __m512i fold512(__m512i x, __m512i k, __m512i next) {
    return _mm512_ternarylogic_epi64(
        _mm512_clmulepi64_epi128(x, k, 0x00), _mm512_clmulepi64_epi128(x, k, 0x11), next, 0x96);
}

static inline FOLD __m128i fold128(__m128i x, __m128i k, __m128i next) {
    return _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11)), next);
}

static FOLD long fold(unsigned int crc, const unsigned char *data, long length, unsigned char folded[16]) {
    long blocks = length / 256;
    const __m512i *p = (const __m512i *)data;
    // zlib's register starts as the complement of its CRC; added into the first four bytes, the fold
    // can start from a register of zero.
    __m512i a0 = _mm512_xor_si512(_mm512_loadu_si512(p), _mm512_zextsi128_si512(_mm_cvtsi32_si128((int)~crc)));
    __m512i a1 = _mm512_loadu_si512(p + 1), a2 = _mm512_loadu_si512(p + 2), a3 = _mm512_loadu_si512(p + 3);
    __m512i k = _mm512_broadcast_i32x4(constants(0x11542778aULL, 0x1322d1430ULL)); // D = 2048
    for (long b = 1; b < blocks; b++) {
        p += 4;
        a0 = fold512(a0, k, _mm512_loadu_si512(p));
        a1 = fold512(a1, k, _mm512_loadu_si512(p + 1));
        a2 = fold512(a2, k, _mm512_loadu_si512(p + 2));
        a3 = fold512(a3, k, _mm512_loadu_si512(p + 3));
    }
    // The four accumulators into one (64 bytes apart), then its four lanes into one (16 apart).
    __m512i k512 = _mm512_broadcast_i32x4(constants(0x154442bd4ULL, 0x1c6e41596ULL));
    a1 = fold512(a0, k512, a1);
    a2 = fold512(a1, k512, a2);
    a3 = fold512(a2, k512, a3);
    __m128i k128 = constants(0x1751997d0ULL, 0x0ccaa009eULL);
    __m128i x = _mm512_extracti32x4_epi32(a3, 0);
    x = fold128(x, k128, _mm512_extracti32x4_epi32(a3, 1));
    x = fold128(x, k128, _mm512_extracti32x4_epi32(a3, 2));
    x = fold128(x, k128, _mm512_extracti32x4_epi32(a3, 3));
    _mm_storeu_si128((__m128i *)folded, x);
    return blocks * 256;
}
#endif

long lethe_crc32_fold(unsigned int crc, const unsigned char *data, long length, unsigned char folded[16]) {
#if defined(__x86_64__) && defined(__clang__)
    if (length >= 256 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("vpclmulqdq"))
        return fold(crc, data, length, folded);
#endif
    return 0;
}
