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
    if (!padded) return -1;
    __m512 w[49];
    for (long n = 0; n < batch; n++) {
        for (long i = 0; i < height; i++)
            memcpy(padded + (i + padTop) * paddedWidth + padLeft, x + (n * height + i) * width, sizeof(float) * width);
        for (long b = 0; b < blocks; b++) {
            // Taps of the block's 16 channels: weight is [outChannels][kh][kw].
            for (long t = 0; t < kh * kw; t++)
                w[t] = _mm512_set_ps(
                    weight[(16 * b + 15) * kh * kw + t], weight[(16 * b + 14) * kh * kw + t],
                    weight[(16 * b + 13) * kh * kw + t], weight[(16 * b + 12) * kh * kw + t],
                    weight[(16 * b + 11) * kh * kw + t], weight[(16 * b + 10) * kh * kw + t],
                    weight[(16 * b + 9) * kh * kw + t], weight[(16 * b + 8) * kh * kw + t],
                    weight[(16 * b + 7) * kh * kw + t], weight[(16 * b + 6) * kh * kw + t],
                    weight[(16 * b + 5) * kh * kw + t], weight[(16 * b + 4) * kh * kw + t],
                    weight[(16 * b + 3) * kh * kw + t], weight[(16 * b + 2) * kh * kw + t],
                    weight[(16 * b + 1) * kh * kw + t], weight[(16 * b) * kh * kw + t]);
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

#else
int lethe_single_channel_conv_pool(
    const float *x, long batch, long height, long width, const float *weight, const float *bias, long outChannels,
    long kh, long kw, long padTop, long padLeft, long padBottom, long padRight, int relu, float *y) {
    return -1;
}
#endif
