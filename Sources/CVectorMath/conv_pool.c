#include "vector_math.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__clang__)
#include "lanes.h"

/// PX pooled columns of one pooled row and one block of 16 output channels: the 2 × 2PX convolution
/// outputs under them in registers, each the K = kh·kw taps' broadcast multiply-adds from the padded
/// image, then their maximum, the bias, and ReLU (the same as pooling ReLU(conv + bias): adding a
/// constant and ReLU both keep order, rounding included). PX is a constant at every call.
static inline __attribute__((always_inline)) AVX512 void pooled_columns(
    const float *padded, long paddedWidth, long y0, long x0, const __m512 *w, long kh, long kw, __m512 bias,
    int relu, float *out, const int PX) {
    __m512 acc[2][8];
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < 2 * PX; c++) acc[r][c] = _mm512_setzero_ps();
    for (long ky = 0; ky < kh; ky++)
        for (long kx = 0; kx < kw; kx++) {
            __m512 tap = w[ky * kw + kx];
            for (int r = 0; r < 2; r++) {
                const float *row = padded + (y0 + r + ky) * paddedWidth + x0 + kx;
                for (int c = 0; c < 2 * PX; c++) acc[r][c] = _mm512_fmadd_ps(_mm512_set1_ps(row[c]), tap, acc[r][c]);
            }
        }
    for (int p = 0; p < PX; p++) {
        __m512 m = _mm512_max_ps(
            _mm512_max_ps(acc[0][2 * p], acc[0][2 * p + 1]), _mm512_max_ps(acc[1][2 * p], acc[1][2 * p + 1]));
        m = _mm512_add_ps(m, bias);
        if (relu) m = _mm512_max_ps(m, _mm512_setzero_ps());
        _mm512_storeu_ps(out + 16 * p, m);
    }
}

static AVX512 int single_channel_conv_pool(
    const float *x, long batch, long height, long width, const float *weight, const float *bias, long outChannels,
    long kh, long kw, long padTop, long padLeft, long padBottom, long padRight, int relu, float *y) {
    long paddedHeight = height + padTop + padBottom, paddedWidth = width + padLeft + padRight;
    long convHeight = paddedHeight - kh + 1, convWidth = paddedWidth - kw + 1;
    long poolHeight = convHeight / 2, poolWidth = convWidth / 2, blocks = outChannels / 16;
    float *padded = calloc((size_t)(paddedHeight * paddedWidth + 16), sizeof(float));
    // The taps of each block of 16 channels as vectors, [blocks][kh·kw][16], once for all images
    // (weight is [outChannels][kh][kw]).
    float *packed = malloc(sizeof(float) * (size_t)(outChannels * kh * kw));
    if (!padded || !packed) {
        free(padded);
        free(packed);
        return -1;
    }
    for (long o = 0; o < outChannels; o++)
        for (long t = 0; t < kh * kw; t++) packed[((o / 16) * kh * kw + t) * 16 + o % 16] = weight[o * kh * kw + t];
    __m512 w[49];
    for (long n = 0; n < batch; n++) {
        for (long i = 0; i < height; i++)
            memcpy(padded + (i + padTop) * paddedWidth + padLeft, x + (n * height + i) * width, sizeof(float) * width);
        for (long b = 0; b < blocks; b++) {
            for (long t = 0; t < kh * kw; t++) w[t] = _mm512_loadu_ps(packed + (b * kh * kw + t) * 16);
            __m512 bv = bias ? _mm512_loadu_ps(bias + 16 * b) : _mm512_setzero_ps();
            float *block = y + (n * blocks + b) * poolHeight * poolWidth * 16;
            for (long py = 0; py < poolHeight; py++) {
                float *row = block + py * poolWidth * 16;
                long px = 0;
                for (; px + 4 <= poolWidth; px += 4)
                    pooled_columns(padded, paddedWidth, 2 * py, 2 * px, w, kh, kw, bv, relu, row + 16 * px, 4);
                for (; px < poolWidth; px++)
                    pooled_columns(padded, paddedWidth, 2 * py, 2 * px, w, kh, kw, bv, relu, row + 16 * px, 1);
            }
        }
    }
    free(padded);
    free(packed);
    return 0;
}

int lethe_single_channel_conv_pool(
    const float *x, long batch, long height, long width, const float *weight, const float *bias, long outChannels,
    long kh, long kw, long padTop, long padLeft, long padBottom, long padRight, int relu, float *y) {
    if (!__builtin_cpu_supports("avx512f") || outChannels % 16 != 0 || kh * kw > 49 || kh < 1 || kw < 1) return -1;
    if (height + padTop + padBottom < kh + 1 || width + padLeft + padRight < kw + 1) return -1;
    return single_channel_conv_pool(
        x, batch, height, width, weight, bias, outChannels, kh, kw, padTop, padLeft, padBottom, padRight, relu, y);
}


/// PX pooled columns of one pooled row for OB blocks of 16 output channels, from an image whose
/// channels come in blocks of 16 (padded): the 2 × 2PX convolution outputs of each block in
/// registers (OB · 4PX accumulators), each input pixel broadcast once for the OB blocks' taps, then the
/// maximum of each 2 × 2, the bias and ReLU. `taps` is the first block's packed weights,
/// [icBlocks][kh][kw][16 input][16 output], the next block's `tapBlock` floats further on. Output
/// block o's 16 channels of column p go to out + o·outBlock + 16p.
static inline __attribute__((always_inline)) AVX512 void blocked_pooled_columns(
    const float *padded, long icBlocks, long paddedHeight, long paddedWidth, long y0, long x0, const float *taps,
    long tapBlock, long kh, long kw, const float *bias, int relu, float *out, long outBlock, const int PX,
    const int OB) {
    __m512 acc[2][6][2];
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < 2 * PX; c++)
            for (int o = 0; o < OB; o++) acc[r][c][o] = _mm512_setzero_ps();
    for (long b = 0; b < icBlocks; b++) {
        const float *plane = padded + b * paddedHeight * paddedWidth * 16;
        for (long ky = 0; ky < kh; ky++)
            for (long kx = 0; kx < kw; kx++) {
                const float *w = taps + ((b * kh + ky) * kw + kx) * 256;
                const float *top = plane + ((y0 + ky) * paddedWidth + x0 + kx) * 16;
                const float *bottom = top + paddedWidth * 16;
                for (int i = 0; i < 16; i++) {
                    __m512 w0 = _mm512_loadu_ps(w + 16 * i);
                    __m512 w1 = OB > 1 ? _mm512_loadu_ps(w + tapBlock + 16 * i) : w0;
                    for (int c = 0; c < 2 * PX; c++) {
                        __m512 v = _mm512_set1_ps(top[16 * c + i]);
                        acc[0][c][0] = _mm512_fmadd_ps(v, w0, acc[0][c][0]);
                        if (OB > 1) acc[0][c][1] = _mm512_fmadd_ps(v, w1, acc[0][c][1]);
                        __m512 u = _mm512_set1_ps(bottom[16 * c + i]);
                        acc[1][c][0] = _mm512_fmadd_ps(u, w0, acc[1][c][0]);
                        if (OB > 1) acc[1][c][1] = _mm512_fmadd_ps(u, w1, acc[1][c][1]);
                    }
                }
            }
    }
    for (int o = 0; o < OB; o++) {
        __m512 bv = bias ? _mm512_loadu_ps(bias + 16 * o) : _mm512_setzero_ps();
        for (int p = 0; p < PX; p++) {
            __m512 m = _mm512_max_ps(
                _mm512_max_ps(acc[0][2 * p][o], acc[0][2 * p + 1][o]),
                _mm512_max_ps(acc[1][2 * p][o], acc[1][2 * p + 1][o]));
            m = _mm512_add_ps(m, bv);
            if (relu) m = _mm512_max_ps(m, _mm512_setzero_ps());
            _mm512_storeu_ps(out + o * outBlock + 16 * p, m);
        }
    }
}

/// One pooled row of OB output blocks, its columns PX_MAIN at a time and the rest one by one.
static inline __attribute__((always_inline)) AVX512 void blocked_pooled_row(
    const float *padded, long icBlocks, long paddedHeight, long paddedWidth, long py, long poolWidth,
    const float *taps, long tapBlock, long kh, long kw, const float *bias, int relu, float *out, long outBlock,
    const int OB) {
    long px = 0;
    for (; px + 3 <= poolWidth; px += 3)
        blocked_pooled_columns(
            padded, icBlocks, paddedHeight, paddedWidth, 2 * py, 2 * px, taps, tapBlock, kh, kw, bias, relu,
            out + 16 * px, outBlock, 3, OB);
    for (; px < poolWidth; px++)
        blocked_pooled_columns(
            padded, icBlocks, paddedHeight, paddedWidth, 2 * py, 2 * px, taps, tapBlock, kh, kw, bias, relu,
            out + 16 * px, outBlock, 1, OB);
}

static AVX512 int blocked_conv_pool(
    const float *x, long batch, long inChannels, long height, long width, const float *taps, const float *bias,
    long outChannels, long kh, long kw, long padTop, long padLeft, long padBottom, long padRight, int relu,
    int plainOutput, float *y) {
    long paddedHeight = height + padTop + padBottom, paddedWidth = width + padLeft + padRight;
    long convHeight = paddedHeight - kh + 1, convWidth = paddedWidth - kw + 1;
    long poolHeight = convHeight / 2, poolWidth = convWidth / 2;
    long icBlocks = inChannels / 16, ocBlocks = outChannels / 16, tapBlock = icBlocks * kh * kw * 256;
    long plane = poolHeight * poolWidth, outBlock = 16 * plane;
    float *padded = calloc((size_t)(icBlocks * paddedHeight * paddedWidth * 16), sizeof(float));
    // A plain output is written blocked here first, then transposed out of its blocks: scattering
    // each pixel's 16 channels cost 6 % of the kernel.
    float *tile = plainOutput ? malloc(sizeof(float) * (size_t)(outChannels * plane)) : NULL;
    if (!padded || (plainOutput && !tile)) {
        free(padded);
        free(tile);
        return -1;
    }
    for (long n = 0; n < batch; n++) {
        const float *image = x + n * icBlocks * height * width * 16;
        for (long b = 0; b < icBlocks; b++)
            for (long i = 0; i < height; i++)
                memcpy(
                    padded + ((b * paddedHeight + i + padTop) * paddedWidth + padLeft) * 16,
                    image + (b * height + i) * width * 16, sizeof(float) * 16 * (size_t)width);
        // Blocked: [ocBlocks][poolHeight][poolWidth][16]; plain: [outChannels][poolHeight][poolWidth].
        float *pooled = plainOutput ? tile : y + n * outChannels * plane;
        for (long o = 0; o < ocBlocks; o += 2) {
            const float *blockTaps = taps + o * tapBlock;
            const float *blockBias = bias ? bias + 16 * o : NULL;
            for (long py = 0; py < poolHeight; py++) {
                float *row = pooled + o * outBlock + py * poolWidth * 16;
                if (o + 1 < ocBlocks)
                    blocked_pooled_row(
                        padded, icBlocks, paddedHeight, paddedWidth, py, poolWidth, blockTaps, tapBlock, kh, kw,
                        blockBias, relu, row, outBlock, 2);
                else
                    blocked_pooled_row(
                        padded, icBlocks, paddedHeight, paddedWidth, py, poolWidth, blockTaps, tapBlock, kh, kw,
                        blockBias, relu, row, outBlock, 1);
            }
        }
        if (plainOutput)
            for (long o = 0; o < ocBlocks; o++)
                lethe_transpose(tile + o * outBlock, 16, plane, 16, y + (n * ocBlocks + o) * outBlock, plane);
    }
    free(tile);
    free(padded);
    return 0;
}

int lethe_blocked_conv_pool(
    const float *x, long batch, long inChannels, long height, long width, const float *taps, const float *bias,
    long outChannels, long kh, long kw, long padTop, long padLeft, long padBottom, long padRight, int relu,
    int plainOutput, float *y) {
    if (!__builtin_cpu_supports("avx512f") || inChannels % 16 != 0 || outChannels % 16 != 0 || inChannels < 16)
        return -1;
    if (kh < 1 || kw < 1 || height + padTop + padBottom < kh + 1 || width + padLeft + padRight < kw + 1) return -1;
    return blocked_conv_pool(
        x, batch, inChannels, height, width, taps, bias, outChannels, kh, kw, padTop, padLeft, padBottom, padRight,
        relu, plainOutput, y);
}

#else
int lethe_single_channel_conv_pool(
    const float *x, long batch, long height, long width, const float *weight, const float *bias, long outChannels,
    long kh, long kw, long padTop, long padLeft, long padBottom, long padRight, int relu, float *y) {
    return -1;
}

int lethe_blocked_conv_pool(
    const float *x, long batch, long inChannels, long height, long width, const float *taps, const float *bias,
    long outChannels, long kh, long kw, long padTop, long padLeft, long padBottom, long padRight, int relu,
    int plainOutput, float *y) {
    return -1;
}
#endif

void lethe_blocked_conv_pool_taps(
    const float *weight, long outChannels, long inChannels, long kh, long kw, float *taps) {
    long tapBlock = inChannels / 16 * kh * kw * 256;
    for (long o = 0; o < outChannels; o++)
        for (long i = 0; i < inChannels; i++)
            for (long t = 0; t < kh * kw; t++)
                taps[(o / 16) * tapBlock + ((i / 16) * kh * kw + t) * 256 + (i % 16) * 16 + o % 16] =
                    weight[(o * inChannels + i) * kh * kw + t];
}
