#ifndef LETHE_VECTOR_MATH_H
#define LETHE_VECTOR_MATH_H

/// Float kernels that the C compiler vectorizes (AVX2+FMA when the CPU has them, chosen at run
/// time): the transformer's exp, erf and tanh, where the C library's one-call-per-element
/// expf/erff took half of a ViT's run time (and tanhf a fifth of magika's).

/// target[i] = exp(source[i] - shift) for i < count; returns the sum of the results.
float lethe_shifted_exp(const float *source, float *target, long count, float shift);

/// target = softmax(source) over `count` floats. Returns 0, or -1 (target untouched) when the
/// row's maximum is not finite, which the caller handles on its careful path.
int lethe_softmax(const float *source, float *target, long count);

/// softmax of each of `rows` contiguous rows of `count` floats, `target` row r from `source` row r
/// (the two may be the same buffer). Rows whose maximum is not finite take one expf per element.
void lethe_softmax_rows(const float *source, float *target, long rows, long count);

/// The mean and the mean squared deviation of `count` floats, accumulated in double (two passes).
void lethe_moments(const float *data, long count, double *mean, double *variance);

/// data[i] = exp(data[i]).
void lethe_exp(float *data, long count);

/// data[i] = erf(data[i]).
void lethe_erf(float *data, long count);

/// data[i] = 0.5 x (1 + erf(x / sqrt 2)): GELU without the tanh approximation.
void lethe_gelu(float *data, long count);
/// data[i] = tanh(data[i]).
void lethe_tanh(float *data, long count);

#endif
