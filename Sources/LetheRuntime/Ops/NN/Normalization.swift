import LetheCore
#if canImport(Glibc)
import Glibc
#endif

/// BatchNormalization: `y = (x − mean) / √(var + ε) · scale + B` per channel.
///
/// Inference uses the given mean and variance. With `training_mode=1` (opset ≥ 14) the statistics are
/// the batch's own (mean and population variance over every axis but the channel), and the optional
/// outputs 1 and 2 are the updated running statistics `input · momentum + batch · (1 − momentum)`.
struct BatchNormKernel: Kernel {
    let epsilon: Float
    let training: Bool
    let momentum: Float

    init(_ request: KernelRequest) throws {
        epsilon = try request.float("epsilon", 1e-5)
        momentum = try request.float("momentum", 0.9)
        training = try request.int("training_mode", 0) != 0
        if training && request.opset < 14 { throw Unsupported("training_mode before opset 14") }
        // Before opset 14 the extra outputs are the training statistics of a different, older definition.
        if !training, request.node.outputs.dropFirst().contains(where: { !$0.isEmpty }) {
            throw Unsupported("running mean/variance outputs without training_mode=1")
        }
    }

    /// Per-channel multiplier and offset equivalent to the normalisation.
    static func affine(
        scale: Tensor, bias: Tensor, mean: Tensor, variance: Tensor, epsilon: Float
    ) -> (a: [Float], b: [Float]) {
        affine(
            scale: scale.floatValues(), bias: bias.floatValues(), mean: mean.floatValues(),
            variance: variance.floatValues(),
            epsilon: epsilon)
    }

    static func affine(
        scale s: [Float], bias b: [Float], mean m: [Float], variance v: [Float], epsilon: Float
    ) -> (a: [Float], b: [Float]) {
        var multiplier = [Float](repeating: 0, count: s.count), offset = multiplier
        for c in 0..<s.count {
            multiplier[c] = s[c] / (v[c] + epsilon).squareRoot()
            offset[c] = b[c] - m[c] * multiplier[c]
        }
        return (multiplier, offset)
    }

    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let x = try requireFloat(inputs.required(0))
        guard x.rank >= 2 else { throw RuntimeError("BatchNormalization input \(x.shape) has no channel axis") }
        let channels = x.shape[1]
        let parameters = try (1...4).map { try inputs.required($0) }
        guard parameters.allSatisfy({ $0.elementCount == channels }) else {
            throw RuntimeError(
                "BatchNormalization parameters \(parameters.map(\.shape)) do not have \(channels) values")
        }
        let inner = x.shape.dropFirst(2).reduce(1, *)
        let scale = parameters[0].floatValues(), bias = parameters[1].floatValues()
        var mean = parameters[2].floatValues(), variance = parameters[3].floatValues()
        var running: [Tensor] = []
        if training {
            guard x.shape[0] * inner > 0 else {
                throw RuntimeError("BatchNormalization training on an empty batch \(x.shape)")
            }
            // The running statistics come back in the type they came in, which here is the compute type.
            _ = try requireFloat(parameters[2], "BatchNormalization input_mean")
            _ = try requireFloat(parameters[3], "BatchNormalization input_var")
            (mean, variance) = Self.batchStatistics(x, channels: channels, inner: inner, context)
            let keep = momentum, take = 1 - momentum
            let oldMean = parameters[2].floatValues(), oldVariance = parameters[3].floatValues()
            running = [
                Tensor(shape: parameters[2].shape, values: (0..<channels).map { oldMean[$0] * keep + mean[$0] * take }),
                Tensor(
                    shape: parameters[3].shape,
                    values: (0..<channels).map { oldVariance[$0] * keep + variance[$0] * take })
            ]
        }
        let (a, b) = BatchNormKernel.affine(scale: scale, bias: bias, mean: mean, variance: variance, epsilon: epsilon)
        let y = try Tensor.uninitialized(.float32, x.shape)
        let px = x.floats, py = y.mutableFloats
        Parallel.forEach(x.shape[0] * channels, threads: context.threads, grain: max(1, 16384 / max(1, inner))) {
            range in
            for plane in range {
                let c = plane % channels, scale = a[c], shift = b[c]
                let source = px + plane * inner, target = py + plane * inner
                for i in 0..<inner { target[i] = source[i] * scale + shift }
            }
        }
        return [y] + running
    }

    /// Mean and population variance per channel over the batch and spatial axes, accumulated in Double
    /// (two passes, so large means do not cancel the variance).
    static func batchStatistics(
        _ x: Tensor, channels: Int, inner: Int, _ context: ExecutionContext
    ) -> (mean: [Float], variance: [Float]) {
        let batch = x.shape[0], count = Double(batch * inner), px = x.floats
        var mean = [Float](repeating: 0, count: channels), variance = mean
        mean.withUnsafeMutableBufferPointer { means in
            variance.withUnsafeMutableBufferPointer { variances in
                let pm = means.baseAddress!, pv = variances.baseAddress!
                Parallel.forEach(channels, threads: context.threads, grain: max(1, 16384 / max(1, batch * inner))) {
                    range in
                    for c in range {
                        var sum: Double = 0
                        for n in 0..<batch {
                            let source = px + (n * channels + c) * inner
                            for i in 0..<inner { sum += Double(source[i]) }
                        }
                        let m = sum / count
                        var squares: Double = 0
                        for n in 0..<batch {
                            let source = px + (n * channels + c) * inner
                            for i in 0..<inner { let d = Double(source[i]) - m; squares += d * d }
                        }
                        pm[c] = Float(m)
                        pv[c] = Float(squares / count)
                    }
                }
            }
        }
        return (mean, variance)
    }
}

/// LayerNormalization over the axes from `axis` to the end, with optional Mean and InvStdDev outputs.
struct LayerNormKernel: Kernel {
    let axis: Int
    let epsilon: Float

    init(_ request: KernelRequest) throws {
        axis = try request.int("axis", -1)
        epsilon = try request.float("epsilon", 1e-5)
    }

    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let x = try requireFloat(inputs.required(0))
        let scale = try requireFloat(inputs.required(1))
        let bias = try inputs.optional(2).map { try requireFloat($0) }
        let start = try normalizeAxis(axis, rank: x.rank)
        let inner = x.shape[start...].reduce(1, *), rows = x.shape[..<start].reduce(1, *)
        let normalized = Array(x.shape[start...])
        // Scale and bias broadcast over the normalised axes.
        let fullScale = try expandTo(scale, normalized, context)
        let fullBias = try bias.map { try expandTo($0, normalized, context) }
        let y = try Tensor.uninitialized(.float32, x.shape)
        var statShape = x.shape
        for i in start..<x.rank { statShape[i] = 1 }
        let meanOut = try Tensor.uninitialized(.float32, statShape),
            invOut = try Tensor.uninitialized(.float32, statShape)
        let px = x.floats, py = y.mutableFloats, ps = fullScale.floats, pb = fullBias?.floats
        let pm = meanOut.mutableFloats, pi = invOut.mutableFloats
        let epsilon = Double(self.epsilon)
        Parallel.forEach(rows, threads: context.threads, grain: max(1, 8192 / max(1, inner))) { range in
            // The same formula in one AVX-512 pass per row and step: a transformer's rows are short
            // (64 floats in the sample ViT), where the call per row and the scalar tail cost most.
            if VectorMath.layerNormRows(
                px + range.lowerBound * inner, py + range.lowerBound * inner, rows: range.count, inner: inner,
                scale: ps, bias: pb, epsilon: epsilon, means: pm + range.lowerBound,
                inverses: pi + range.lowerBound)
            {
                return
            }
            for r in range {
                let source = px + r * inner, target = py + r * inner
                let (mean, variance) = VectorMath.moments(source, inner)
                let inv = 1 / (variance + epsilon).squareRoot()
                let m = Float(mean), s = Float(inv)
                pm[r] = m
                pi[r] = s
                if let pb {
                    for i in 0..<inner { target[i] = (source[i] - m) * s * ps[i] + pb[i] }
                } else {
                    for i in 0..<inner { target[i] = (source[i] - m) * s * ps[i] }
                }
            }
        }
        return [y, meanOut, invOut]
    }

    private func expandTo(_ t: Tensor, _ shape: [Int], _ context: ExecutionContext) throws -> Tensor {
        if t.shape == shape { return t }
        return try broadcastFloat(Tensor(zeros: .float32, shape: shape), t, context) { _, v in v }
    }
}

/// Softmax and LogSoftmax: opset < 13 flattens to 2-D at `axis`, opset ≥ 13 normalises along `axis` alone.
struct SoftmaxKernel: Kernel {
    let axis: Int
    let flattens: Bool
    let logarithm: Bool
    let hardmax: Bool

    init(_ request: KernelRequest) throws {
        flattens = request.opset < 13
        axis = try request.int("axis", flattens ? 1 : -1)
        logarithm = request.node.opType == "LogSoftmax"
        hardmax = request.node.opType == "Hardmax"
    }

    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let x = try requireFloat(inputs.required(0))
        if x.rank == 0 { return [Tensor(shape: [], values: [Float(logarithm ? 0 : 1)])] }
        let a = try normalizeAxis(axis, rank: x.rank)
        let outer = x.shape[..<a].reduce(1, *)
        let length = flattens ? x.shape[a...].reduce(1, *) : x.shape[a]
        let inner = flattens ? 1 : x.shape[(a + 1)...].reduce(1, *)
        let y = try Tensor.uninitialized(.float32, x.shape)
        let px = x.floats, py = y.mutableFloats
        let logarithm = self.logarithm, hardmax = self.hardmax
        let grain = max(1, 4096 / max(1, length))
        if inner == 1, !hardmax, !logarithm {
            // Contiguous rows (attention's last axis) go to the vectorized kernel a chunk at a time.
            Parallel.forEach(outer, threads: context.threads, grain: grain) { range in
                let offset = range.lowerBound * length
                VectorMath.softmaxRows(px + offset, py + offset, rows: range.count, count: length)
            }
            return [y]
        }
        Parallel.forEach(outer * inner, threads: context.threads, grain: grain) { range in
            for lane in range {
                let o = lane / inner, i = lane % inner
                let base = o * length * inner + i
                var high = -Float.infinity
                var argmax = 0
                for j in 0..<length where px[base + j * inner] > high { high = px[base + j * inner]; argmax = j }
                if hardmax {
                    for j in 0..<length { py[base + j * inner] = j == argmax ? 1 : 0 }
                    continue
                }
                var sum: Float = 0
                for j in 0..<length {
                    let e = expf(px[base + j * inner] - high)
                    py[base + j * inner] = e
                    sum += e
                }
                if logarithm {
                    let logSum = logf(sum)
                    for j in 0..<length { py[base + j * inner] = px[base + j * inner] - high - logSum }
                } else {
                    let inv = 1 / sum
                    for j in 0..<length { py[base + j * inner] *= inv }
                }
            }
        }
        return [y]
    }
}
