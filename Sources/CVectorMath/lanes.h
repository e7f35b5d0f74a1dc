#ifndef LETHE_LANES_H
#define LETHE_LANES_H

// Private to CVectorMath's AVX-512 kernels (not in include/, so Swift never imports it).
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f")))

/// The lanes of a vector of sixteen that the last `left` floats of a row fill: all for 16 or more,
/// none for 0 or fewer.
static inline AVX512 __mmask16 lethe_lane_mask(long left) {
    return left >= 16 ? (__mmask16)0xFFFF : (left <= 0 ? 0 : (__mmask16)((1u << left) - 1));
}

#endif
