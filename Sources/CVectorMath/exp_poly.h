#ifndef LETHE_EXP_POLY_H
#define LETHE_EXP_POLY_H

// Private to CVectorMath: the constants of its exp (vector_math.c's exp_approx and its AVX2 and
// AVX-512 lanes), in one place so that every width computes the same function. Cody-Waite
// reduction x = n ln2 + r, Cephes' expf polynomial for e^r, 2^n in the exponent bits.

/// 1.5 · 2^23: adding and subtracting it rounds to an integer.
#define LETHE_EXP_MAGIC 12582912.0f
/// Below this exp is 0 in float32, above LETHE_EXP_HIGH +inf.
#define LETHE_EXP_LOW -87.33654f
#define LETHE_EXP_HIGH 88.72283f
#define LETHE_EXP_LOG2E 1.44269504088896341f
/// ln 2 in two parts: n · LN2_HIGH is exact in float32.
#define LETHE_EXP_LN2_HIGH 0.693359375f
#define LETHE_EXP_LN2_LOW_NEGATED 2.12194440e-4f
/// e^r ≈ 1 + r + r² · (P5 + r (P4 + r (P3 + r (P2 + r (P1 + r P0))))).
#define LETHE_EXP_P0 1.9875691500e-4f
#define LETHE_EXP_P1 1.3981999507e-3f
#define LETHE_EXP_P2 8.3334519073e-3f
#define LETHE_EXP_P3 4.1665795894e-2f
#define LETHE_EXP_P4 1.6666665459e-1f
#define LETHE_EXP_P5 5.0000001201e-1f

#endif
