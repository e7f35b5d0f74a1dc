import LetheCore

/// BatchNormalization in inference mode: `y = (x − mean) / √(var + ε) · scale + B` per channel.
struct BatchNormKernel: Kernel {
    let epsilon: Float

    init(_ request: KernelRequest) throws {
        epsilon = try request.float("epsilon", 1e-5)
        if try request.int("training_mode", 0) != 0 { throw Unsupported("training_mode=1") }
        if request.node.outputs.dropFirst().contains(where: { !$0.isEmpty }) {
            throw Unsupported("running mean/variance outputs (training mode)")
        }
    }

    /// Per-channel multiplier and offset equivalent to the normalisation.
    static func affine(scale: Tensor, bias: Tensor, mean: Tensor, variance: Tensor, epsilon: Float) -> (a: [Float], b: [Float]) {
        let s = scale.floatValues(), b = bias.floatValues(), m = mean.floatValues(), v = variance.floatValues()
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
            throw RuntimeError("BatchNormalization parameters do not have \(channels) values")
        }
        let (a, b) = BatchNormKernel.affine(scale: parameters[0], bias: parameters[1], mean: parameters[2],
                                            variance: parameters[3], epsilon: epsilon)
        let inner = x.shape.dropFirst(2).reduce(1, *)
        let y = try Tensor.uninitialized(.float32, x.shape)
        let px = x.floats, py = y.mutableFloats
        Parallel.forEach(x.shape[0] * channels, threads: context.threads, grain: max(1, 16384 / max(1, inner))) { range in
            for plane in range {
                let c = plane % channels, scale = a[c], shift = b[c]
                let source = px + plane * inner, target = py + plane * inner
                for i in 0..<inner { target[i] = source[i] * scale + shift }
            }
        }
        return [y]
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
        let meanOut = try Tensor.uninitialized(.float32, statShape), invOut = try Tensor.uninitialized(.float32, statShape)
        let px = x.floats, py = y.mutableFloats, ps = fullScale.floats, pb = fullBias?.floats
        let pm = meanOut.mutableFloats, pi = invOut.mutableFloats
        let epsilon = Double(self.epsilon)
        Parallel.forEach(rows, threads: context.threads, grain: max(1, 8192 / max(1, inner))) { range in
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
        Parallel.forEach(outer * inner, threads: context.threads, grain: max(1, 4096 / max(1, length))) { range in
            for lane in range {
                let o = lane / inner, i = lane % inner
                let base = o * length * inner + i
                // A contiguous row (attention's last axis) goes through the vectorized kernel.
                if inner == 1, !hardmax, !logarithm, VectorMath.softmax(px + base, py + base, length) { continue }
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

#if canImport(Glibc)
import Glibc
#endif
