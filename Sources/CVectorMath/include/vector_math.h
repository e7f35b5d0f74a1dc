#ifndef LETHE_VECTOR_MATH_H
#define LETHE_VECTOR_MATH_H

/// Float kernels that the C compiler vectorizes (AVX2+FMA when the CPU has them, chosen at run
/// time): the transformer's exp, erf and tanh, where the C library's one-call-per-element
/// expf/erff took half of a ViT's run time (and tanhf a fifth of magika's).

/// 1 when this CPU runs the AVX-512 kernels below (the others then take their AVX2 or plain paths).
int lethe_avx512_available(void);

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

/// 1 when this CPU converts to bfloat16 and multiplies in it natively (AVX512_BF16).
int lethe_bfloat16_available(void);

/// target[i] = source[i] rounded to bfloat16 (nearest, ties to even; denormals to zero, NaN kept),
/// as the upper 16 bits of a float: the operands of products run in bfloat16.
void lethe_bfloat16_from_float(const float *source, unsigned short *target, long count);

/// target[c·targetStride + r] = source[r·sourceStride + c] for r < rows, c < columns: a row-major
/// matrix transposed, in 16 × 16 blocks in registers on AVX-512 (convolution patch lines turned into
/// Gram rows, attention keys into columns).
void lethe_transpose(const float *source, long sourceStride, long rows, long columns, float *target, long targetStride);

/// A convolution of one input channel (stride 1, no dilation, `outChannels` a multiple of 16, at most
/// 7 × 7 taps) with its bias and optional ReLU, pooled by a 2 × 2 stride-2 max pool, on AVX-512:
/// x is `batch` images of height × width; weight is [outChannels][kh][kw]; y receives the pooled maps
/// in 16-channel blocks, [batch][outChannels/16][⌊convHeight/2⌋][⌊convWidth/2⌋][16]. The first layer
/// of a grey-scale network, where oneDNN's direct kernel ran at a third of its usual speed. Returns 0,
/// or -1 (nothing written) when the CPU or the sizes do not suit it.
int lethe_single_channel_conv_pool(
    const float *x, long batch, long height, long width, const float *weight, const float *bias, long outChannels,
    long kh, long kw, long padTop, long padLeft, long padBottom, long padRight, int relu, float *y);

/// A convolution over 16-channel blocks (stride 1, no dilation, `inChannels` and `outChannels`
/// multiples of 16) with its bias and optional ReLU, pooled by a 2 × 2 stride-2 max pool, on AVX-512:
/// x is `batch` images in blocks, [batch][inChannels/16][height][width][16]; taps are the weights
/// as `lethe_blocked_conv_pool_taps` lays them out; y receives the pooled maps in blocks like x, or plain
/// ([batch][outChannels][⌊convHeight/2⌋][⌊convWidth/2⌋]) when `plainOutput` is 1. The middle layers of
/// a small network (the sample CNN's 16 → 32 channels on 14²), where oneDNN wrote the whole map and
/// the pool read it back. Returns 0, or -1 (nothing written) when the CPU or the sizes do not suit it.
int lethe_blocked_conv_pool(
    const float *x, long batch, long inChannels, long height, long width, const float *taps, const float *bias,
    long outChannels, long kh, long kw, long padTop, long padLeft, long padBottom, long padRight, int relu,
    int plainOutput, float *y);

/// A weight [outChannels][inChannels][kh][kw] (both multiples of 16) laid out for
/// `lethe_blocked_conv_pool`: [outChannels/16][inChannels/16][kh][kw][16 in][16 out], into `taps`
/// (as many floats as the weight). Done once per layer, not per call.
void lethe_blocked_conv_pool_taps(const float *weight, long outChannels, long inChannels, long kh, long kw, float *taps);

/// Layer normalisation of `rows` contiguous rows of `inner` floats on AVX-512: y = (x − mean) ·
/// (variance + epsilon)^(−1/2) · scale (+ bias when not NULL), the moments accumulated in double
/// (two passes over the row, which stays in cache); each row's mean and inverse deviation go to
/// `means` and `inverses`. Returns 0, or -1 (nothing written) when the CPU lacks AVX-512.
int lethe_layer_norm_rows(
    const float *x, float *y, long rows, long inner, const float *scale, const float *bias, double epsilon,
    float *means, float *inverses);

/// Scaled dot-product attention of one head on AVX-512, for short sequences:
/// out[i][:d] = softmax(scale · q[i] · K) · V for i < m, where q is m rows of k (stride ldq); the keys
/// K are k rows of n (stride ldk), or with `keysTransposed` n rows of k; V is n rows of d (stride ldv);
/// out rows are ldo apart. Each query row's n scores and d outputs stay in registers, so n ≤ 128 and
/// d ≤ 64. `scratch` holds 16·⌈n/16⌉·(k + 4) floats. Returns 0, or -1 (nothing written) when the CPU
/// lacks AVX-512 or the sizes are out of range; the caller then takes its general path. Rows whose
/// scores have no finite maximum are normalised as `lethe_softmax_rows` does.
int lethe_attention_small(
    const float *q, long ldq, const float *keys, long ldk, int keysTransposed, const float *v, long ldv, float *out,
    long ldo, long m, long n, long k, long d, float scale, float *scratch);

#endif
