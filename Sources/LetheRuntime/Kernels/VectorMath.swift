import CVectorMath

/// `exp`, `erf` and GELU over float buffers, vectorized (`Sources/CVectorMath`): where the C
/// library's one-call-per-element `expf`/`erff` took half of a ViT's run time. Within a few float
/// ulps of the C library (the tests bound the error over the whole range).
enum VectorMath {
    /// Whether the AVX-512 kernels (attention, layer norm, transposes, the convolution-and-pool
    /// kernels) run on this CPU.
    static let hasAVX512 = lethe_avx512_available() != 0

    /// `target[i] = e^(source[i] − shift)` for `count` floats; returns their sum.
    @inline(__always)
    static func shiftedExp(
        _ source: UnsafePointer<Float>, _ target: UnsafeMutablePointer<Float>, _ count: Int, shift: Float
    ) -> Float {
        lethe_shifted_exp(source, target, count, shift)
    }

    /// `target = softmax(source)` over `count` floats; false (target untouched) when the row's
    /// maximum is not finite.
    @inline(__always)
    static func softmax(_ source: UnsafePointer<Float>, _ target: UnsafeMutablePointer<Float>, _ count: Int) -> Bool {
        lethe_softmax(source, target, count) == 0
    }

    /// `softmax` of each of `rows` contiguous rows of `count` floats, in place or not; rows whose
    /// maximum is not finite take one `expf` per element (NaN entries never win the maximum).
    @inline(__always)
    static func softmaxRows(
        _ source: UnsafePointer<Float>, _ target: UnsafeMutablePointer<Float>, rows: Int, count: Int
    ) {
        lethe_softmax_rows(source, target, rows, count)
    }

    /// The mean and mean squared deviation of `count` floats, accumulated in double.
    @inline(__always)
    static func moments(_ data: UnsafePointer<Float>, _ count: Int) -> (mean: Double, variance: Double) {
        var mean = 0.0, variance = 0.0
        lethe_moments(data, count, &mean, &variance)
        return (mean, variance)
    }

    /// `data[i] = e^data[i]`.
    @inline(__always)
    static func exp(_ data: UnsafeMutablePointer<Float>, _ count: Int) { lethe_exp(data, count) }

    /// `data[i] = erf(data[i])`.
    @inline(__always)
    static func erf(_ data: UnsafeMutablePointer<Float>, _ count: Int) { lethe_erf(data, count) }

    /// `data[i] = ½ x (1 + erf(x / √2))`.
    @inline(__always)
    static func gelu(_ data: UnsafeMutablePointer<Float>, _ count: Int) { lethe_gelu(data, count) }

    /// `data[i] = tanh(data[i])`.
    @inline(__always)
    static func tanh(_ data: UnsafeMutablePointer<Float>, _ count: Int) { lethe_tanh(data, count) }

    /// `target[c][r] = source[r][c]` for `rows` × `columns` floats, rows `stride` apart in the source
    /// and `stride` apart in the target (`lethe_transpose`: 16 × 16 blocks in registers).
    @inline(__always)
    static func transpose(
        _ source: UnsafePointer<Float>, stride sourceStride: Int, rows: Int, columns: Int,
        into target: UnsafeMutablePointer<Float>, stride targetStride: Int
    ) {
        lethe_transpose(source, sourceStride, rows, columns, target, targetStride)
    }

    /// Layer normalisation of `rows` rows of `inner` floats (`lethe_layer_norm_rows`), each row's mean
    /// and inverse deviation written out; false (nothing written) without AVX-512.
    @inline(__always)
    static func layerNormRows(
        _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, inner: Int,
        scale: UnsafePointer<Float>, bias: UnsafePointer<Float>?, epsilon: Double,
        means: UnsafeMutablePointer<Float>, inverses: UnsafeMutablePointer<Float>
    ) -> Bool {
        lethe_layer_norm_rows(x, y, rows, inner, scale, bias, epsilon, means, inverses) == 0
    }

    /// One attention head on AVX-512 for short sequences, `lethe_attention_small`: `out[i] =
    /// softmax(scale · q[i] · K) · V`, K read as k rows of n or (`keysTransposed`) n rows of k.
    /// False (nothing written) when the CPU or the sizes (n ≤ 128, d ≤ 64) do not suit it.
    @inline(__always)
    static func attentionHead(
        queries: UnsafePointer<Float>, _ ldq: Int, keys: UnsafePointer<Float>, _ ldk: Int, keysTransposed: Bool,
        values: UnsafePointer<Float>, _ ldv: Int, into out: UnsafeMutablePointer<Float>, _ ldo: Int,
        m: Int, n: Int, k: Int, d: Int, scale: Float, scratch: UnsafeMutablePointer<Float>
    ) -> Bool {
        lethe_attention_small(
            queries, ldq, keys, ldk, keysTransposed ? 1 : 0, values, ldv, out, ldo, m, n, k, d, scale, scratch) == 0
    }

    /// Floats of scratch `attentionHead` needs.
    static func attentionScratch(n: Int, k: Int) -> Int { (n + 15) / 16 * 16 * (k + 4) }
}
