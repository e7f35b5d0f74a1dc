import LetheCore
import LetheIR
#if canImport(Glibc)
import Glibc
#endif

/// A pointwise float function that can run on its own or fused into the end of a Conv/Gemm/MatMul.
enum Activation: Sendable, Equatable {
    case relu
    case leakyRelu(alpha: Float)
    case clip(min: Float, max: Float)
    case sigmoid
    case hardSigmoid(alpha: Float, beta: Float)
    case hardSwish
    case tanh
    case gelu(tanhApproximation: Bool)
    case softplus
    case elu(alpha: Float)
    case selu(alpha: Float, gamma: Float)

    /// The activation a node computes, or nil when the node is not one (or its parameters are not
    /// constants known now).
    static func from(_ request: KernelRequest) throws -> Activation? {
        switch request.node.opType {
        case "Relu": return .relu
        case "LeakyRelu": return .leakyRelu(alpha: try request.float("alpha", 0.01))
        case "Sigmoid": return .sigmoid
        case "HardSigmoid":
            return .hardSigmoid(alpha: try request.float("alpha", 0.2), beta: try request.float("beta", 0.5))
        case "HardSwish": return .hardSwish
        case "Tanh": return .tanh
        case "Softplus": return .softplus
        case "Elu": return .elu(alpha: try request.float("alpha", 1))
        case "Selu":
            return .selu(
                alpha: try request.float("alpha", 1.67326319217681884765625),
                gamma: try request.float("gamma", 1.05070102214813232421875))
        case "Gelu":
            let mode = try request.string("approximate", "none")
            guard mode == "none" || mode == "tanh" else { throw Unsupported("Gelu approximate='\(mode)'") }
            return .gelu(tanhApproximation: mode == "tanh")
        case "Clip":
            if request.opset < 11 {
                return .clip(
                    min: try request.float("min", -.greatestFiniteMagnitude),
                    max: try request.float("max", .greatestFiniteMagnitude))
            }
            var low = -Float.greatestFiniteMagnitude, high = Float.greatestFiniteMagnitude
            if request.hasInput(1) {
                guard let value = request.constant(1), value.elementCount == 1 else { return nil }
                low = value.floatValues()[0]
            }
            if request.hasInput(2) {
                guard let value = request.constant(2), value.elementCount == 1 else { return nil }
                high = value.floatValues()[0]
            }
            return .clip(min: low, max: high)
        default: return nil
        }
    }

    static let opTypes: Set<String> = [
        "Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh",
        "Softplus", "Elu", "Selu", "Gelu", "Clip"
    ]

    /// Applies the function in place to `count` floats.
    func apply(_ data: UnsafeMutablePointer<Float>, _ count: Int) {
        switch self {
        case .relu:
            for i in 0..<count { data[i] = data[i] > 0 ? data[i] : 0 }
        case .leakyRelu(let alpha):
            for i in 0..<count { let x = data[i]; data[i] = x >= 0 ? x : alpha * x }
        case .clip(let low, let high):
            for i in 0..<count { let x = data[i]; data[i] = x.isNaN ? x : Swift.min(Swift.max(x, low), high) }
        case .sigmoid:
            for i in 0..<count { data[i] = Activation.sigmoid(data[i]) }
        case .hardSigmoid(let alpha, let beta):
            for i in 0..<count { data[i] = Swift.max(0, Swift.min(1, alpha * data[i] + beta)) }
        case .hardSwish:
            for i in 0..<count { let x = data[i]; data[i] = x * Swift.max(0, Swift.min(1, x / 6 + 0.5)) }
        case .tanh:
            VectorMath.tanh(data, count)
        case .gelu(let approximate):
            if approximate {
                Activation.tanhGelu(data, count)
            } else {
                VectorMath.gelu(data, count)
            }
        case .softplus:
            for i in 0..<count {
                let x = data[i]
                data[i] = x > 20 ? x : log1pf(expf(x))
            }
        case .elu(let alpha):
            for i in 0..<count { let x = data[i]; data[i] = x >= 0 ? x : alpha * (expf(x) - 1) }
        case .selu(let alpha, let gamma):
            for i in 0..<count { let x = data[i]; data[i] = x > 0 ? gamma * x : gamma * alpha * (expf(x) - 1) }
        }
    }

    /// `½ x (1 + tanh(√(2/π) (x + 0.044715 x³)))` in place, in blocks of 256 so the tanh argument
    /// stays in cache and runs through the vectorized tanh (glibc's scalar `tanhf` took a fifth of
    /// magika's time).
    static func tanhGelu(_ data: UnsafeMutablePointer<Float>, _ count: Int) {
        let c: Float = 0.7978845608028654
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 256) { buffer in
            let u = buffer.baseAddress!
            var start = 0
            while start < count {
                let n = Swift.min(256, count - start)
                let x = data + start
                for i in 0..<n { u[i] = c * (x[i] + 0.044715 * x[i] * x[i] * x[i]) }
                VectorMath.tanh(u, n)
                for i in 0..<n { x[i] = 0.5 * x[i] * (1 + u[i]) }
                start += n
            }
        }
    }

    @inline(__always) static func sigmoid(_ x: Float) -> Float {
        x >= 0
            ? 1 / (1 + expf(-x))
            : {
                let e = expf(x); return e / (1 + e)
            }()
    }

    /// Applies the function in place over a whole buffer, split across threads.
    func apply(_ data: UnsafeMutablePointer<Float>, _ count: Int, threads: Int) {
        Parallel.forEach(count, threads: threads, grain: 1 << 15) { range in
            apply(data + range.lowerBound, range.count)
        }
    }
}

struct ActivationKernel: Kernel {
    let activation: Activation
    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        if case .clip = activation, x.dtype != .float32 { return try DynamicClipKernel().run(inputs, context) }
        _ = try requireFloat(x)
        let y = try Tensor.uninitialized(.float32, x.shape)
        let n = x.elementCount
        let source = x.floats, target = y.mutableFloats
        Parallel.forEach(n, threads: context.threads, grain: 1 << 15) { range in
            (target + range.lowerBound).update(from: source + range.lowerBound, count: range.count)
            activation.apply(target + range.lowerBound, range.count)
        }
        return [y]
    }
}

/// Clip with bounds that arrive at run time.
struct DynamicClipKernel: Kernel {
    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        if x.dtype != .float32 {
            return [try clipInteger(x, inputs)]
        }
        let low =
            inputs.optional(1).map { $0.floatValues().first ?? -.greatestFiniteMagnitude } ?? -.greatestFiniteMagnitude
        let high =
            inputs.optional(2).map { $0.floatValues().first ?? .greatestFiniteMagnitude } ?? .greatestFiniteMagnitude
        return try ActivationKernel(activation: .clip(min: low, max: high)).run([x], context)
    }

    private func clipInteger(_ x: Tensor, _ inputs: [Tensor?]) throws -> Tensor {
        guard x.dtype.isInteger else { throw RuntimeError("Clip of \(x.dtype) is not supported") }
        let values = x.int64Values()
        let low = inputs.optional(1)?.int64Values().first ?? Int64.min
        let high = inputs.optional(2)?.int64Values().first ?? Int64.max
        let clipped = values.map { Swift.min(Swift.max($0, low), high) }
        return try castInt64(clipped, shape: x.shape, to: x.dtype)
    }
}

func makeActivation(_ request: KernelRequest) throws -> any Kernel {
    if let activation = try Activation.from(request) { return ActivationKernel(activation: activation) }
    if request.node.opType == "Clip" { return DynamicClipKernel() }
    throw Unsupported("not an activation")
}

/// PRelu: slope broadcast from the second input.
func makePRelu(_ request: KernelRequest) throws -> any Kernel {
    ClosureKernel { inputs, context in
        let x = try requireFloat(inputs.required(0)), slope = try requireFloat(inputs.required(1))
        return [try broadcastFloat(x, slope, context) { a, s in a >= 0 ? a : a * s }]
    }
}
