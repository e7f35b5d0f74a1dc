import LetheCore
#if canImport(Glibc)
import Glibc
#endif

/// Add, Sub, Mul, Div, Pow, Mod and the variadic Max/Min/Sum/Mean, with NumPy broadcasting.
enum ArithmeticOp: Sendable {
    case add, sub, mul, div, pow, max, min, mod(fmod: Bool)

    /// `a ∘ b`; a float32 `activation`, when given, finishes each block of the result while it is
    /// still in cache (only the four common float operations take it; the caller checks
    /// `finishesActivation`).
    func apply(_ a: Tensor, _ b: Tensor, _ context: ExecutionContext, activation: Activation? = nil) throws -> Tensor {
        let t = context.threads
        switch (a.dtype, b.dtype) {
        case (.float32, .float32):
            switch self {
            case .add, .sub, .mul, .div: return try floatArithmetic(a, b, t, activation)
            case .pow: return try broadcastFloat(a, b, context, ArithmeticOp.power)
            case .max: return try broadcastFloat(a, b, context) { x, y in x.isNaN || y.isNaN ? .nan : Swift.max(x, y) }
            case .min: return try broadcastFloat(a, b, context) { x, y in x.isNaN || y.isNaN ? .nan : Swift.min(x, y) }
            case .mod(let fmod):
                return try broadcastFloat(a, b, context) { x, y in
                    let r = fmodf(x, y)
                    if fmod { return r }
                    return (r != 0 && ((r < 0) != (y < 0))) ? r + y : r
                }
            }
        case (.float32, _) where self.isPow && b.dtype.isNumeric:
            return try apply(a, b.asFloat32(), context)
        case (.float64, .float64):
            return try floating(a, b, Double.self, t)
        case (.int64, .int64): return try integer(a, b, Int64.self, t)
        case (.int32, .int32): return try integer(a, b, Int32.self, t)
        case (.int16, .int16): return try integer(a, b, Int16.self, t)
        case (.int8, .int8): return try integer(a, b, Int8.self, t)
        case (.uint8, .uint8): return try integer(a, b, UInt8.self, t)
        case (.uint16, .uint16): return try integer(a, b, UInt16.self, t)
        case (.uint32, .uint32): return try integer(a, b, UInt32.self, t)
        case (.uint64, .uint64): return try integer(a, b, UInt64.self, t)
        case (let x, let y) where x.isInteger && y.isNumeric && isPow:
            let result = try ArithmeticOp.pow.apply(a.asFloat32(), b.asFloat32(), context)
            return try castTensor(result, to: a.dtype)
        default:
            throw RuntimeError("\(self) of \(a.dtype) and \(b.dtype) is not supported")
        }
    }

    private var isPow: Bool { if case .pow = self { true } else { false } }

    /// Whether `apply` applies its activation argument itself for operands of these types.
    func finishesActivation(_ a: DType, _ b: DType) -> Bool {
        guard a == .float32, b == .float32 else { return false }
        switch self {
        case .add, .sub, .mul, .div: return true
        default: return false
        }
    }

    /// The four common float operations with the operator chosen outside the loops, so each row
    /// loop is specialised and vectorised (a closure per element costs several times more).
    private func floatArithmetic(_ a: Tensor, _ b: Tensor, _ threads: Int, _ activation: Activation?) throws -> Tensor {
        let shape = try broadcastShapes(a.shape, b.shape)
        let out = try Tensor.uninitialized(.float32, shape)
        let plan = BroadcastPlan([a.shape, b.shape], output: shape)
        let pa = a.floats, pb = b.floats, po = out.mutableFloats
        let op = self
        plan.forEachRow(threads: threads) { offsets, inner, output, count in
            // Blocks of 8192 floats (32 kB): the activation reads them back from L1/L2 rather than
            // from memory in a second pass over the whole tensor (magika's convolution bias + GELU).
            let block = activation == nil ? count : 8192
            var start = 0
            while start < count {
                let n = Swift.min(block, count - start)
                let x = pa + offsets[0] + start * inner[0], y = pb + offsets[1] + start * inner[1]
                let o = po + output + start
                switch op {
                case .add: binaryRow(x, inner[0], y, inner[1], o, n, +)
                case .sub: binaryRow(x, inner[0], y, inner[1], o, n, -)
                case .mul: binaryRow(x, inner[0], y, inner[1], o, n, *)
                default: binaryRow(x, inner[0], y, inner[1], o, n, /)
                }
                activation?.apply(o, n)
                start += n
            }
        }
        return out
    }

    @inline(__always) static func power(_ x: Float, _ y: Float) -> Float {
        if y == 2 { return x * x }
        if y == 0.5 { return x.squareRoot() }
        return powf(x, y)
    }

    private func floating<T: BinaryFloatingPoint>(_ a: Tensor, _ b: Tensor, _ type: T.Type, _ t: Int) throws -> Tensor {
        let f: (T, T) -> T
        switch self {
        case .add: f = { $0 + $1 }
        case .sub: f = { $0 - $1 }
        case .mul: f = { $0 * $1 }
        case .div: f = { $0 / $1 }
        case .pow: f = { T(Foundation_pow(Double($0), Double($1))) }
        case .max: f = { Swift.max($0, $1) }
        case .min: f = { Swift.min($0, $1) }
        case .mod(let fmod):
            f = { x, y in
                let r = T(Glibc.fmod(Double(x), Double(y)))
                if fmod { return r }
                return (r != 0 && ((r < 0) != (y < 0))) ? r + y : r
            }
        }
        return try broadcastBinary(a, b, T.self, T.self, T.self, outDType: a.dtype, threads: t, f)
    }

    private func integer<T: FixedWidthInteger>(_ a: Tensor, _ b: Tensor, _ type: T.Type, _ t: Int) throws -> Tensor {
        let f: (T, T) -> T
        switch self {
        case .add: f = { $0 &+ $1 }
        case .sub: f = { $0 &- $1 }
        case .mul: f = { $0 &* $1 }
        case .div: f = { y, z in z == 0 ? 0 : y.dividedReportingOverflow(by: z).partialValue }
        case .pow:
            f = { base, exponent in
                var result: T = 1
                var e = Int(exponent)
                while e > 0 { result = result &* base; e -= 1 }
                return result
            }
        case .max: f = { Swift.max($0, $1) }
        case .min: f = { Swift.min($0, $1) }
        case .mod(let fmod):
            f = { x, y in
                guard y != 0 else { return 0 }
                let r = x.remainderReportingOverflow(dividingBy: y).partialValue
                if fmod { return r }
                return (r != 0 && ((r < 0) != (y < 0))) ? r &+ y : r
            }
        }
        return try broadcastBinary(a, b, T.self, T.self, T.self, outDType: a.dtype, threads: t, f)
    }
}

@inline(__always) private func Foundation_pow(_ x: Double, _ y: Double) -> Double { Glibc.pow(x, y) }

struct ArithmeticKernel: Kernel {
    let op: ArithmeticOp
    /// Fused follow-up (a residual Add followed by Relu).
    var activation: Activation? = nil
    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let a = try inputs.required(0), b = try inputs.required(1)
        if let activation, op.finishesActivation(a.dtype, b.dtype) {
            return [try op.apply(a, b, context, activation: activation)]
        }
        let result = try op.apply(a, b, context)
        if let activation {
            guard result.dtype == .float32 else { throw RuntimeError("\(activation) of \(result.dtype)") }
            // `apply` returned a fresh tensor, so finishing it in place is safe.
            activation.apply(result.mutableFloats, result.elementCount, threads: context.threads)
        }
        return [result]
    }
}

/// Max, Min, Sum, Mean over any number of inputs.
struct VariadicKernel: Kernel {
    let op: ArithmeticOp
    let mean: Bool
    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let present = inputs.compactMap { $0 }
        guard var result = present.first else { throw RuntimeError("needs at least one input") }
        if present.count == 1 && !mean { return [result] }
        for next in present.dropFirst() { result = try op.apply(result, next, context) }
        if mean {
            guard result.dtype == .float32 else { throw RuntimeError("Mean of \(result.dtype) is not supported") }
            let scale = 1 / Float(present.count)
            result = try broadcastFloat(result, Tensor(scalar: scale), context, *)
        }
        return [result]
    }
}

/// Equal, Less, Greater, LessOrEqual, GreaterOrEqual, And, Or, Xor: boolean results.
enum ComparisonOp: Sendable {
    case equal, less, greater, lessOrEqual, greaterOrEqual, and, or, xor

    func apply(_ a: Tensor, _ b: Tensor, _ context: ExecutionContext) throws -> Tensor {
        let t = context.threads
        guard a.dtype == b.dtype else { throw RuntimeError("comparing \(a.dtype) with \(b.dtype)") }
        switch a.dtype {
        case .bool: return try compareBooleans(a, b, t)
        case .float32: return try compare(a, b, Float.self, t)
        case .float64: return try compare(a, b, Double.self, t)
        case .int64: return try compare(a, b, Int64.self, t)
        case .int32: return try compare(a, b, Int32.self, t)
        case .int16: return try compare(a, b, Int16.self, t)
        case .int8: return try compare(a, b, Int8.self, t)
        case .uint8: return try compare(a, b, UInt8.self, t)
        case .uint16: return try compare(a, b, UInt16.self, t)
        case .uint32: return try compare(a, b, UInt32.self, t)
        case .uint64: return try compare(a, b, UInt64.self, t)
        default: throw RuntimeError("comparison of \(a.dtype) is not supported")
        }
    }

    private func compareBooleans(_ a: Tensor, _ b: Tensor, _ t: Int) throws -> Tensor {
        let g: (Bool, Bool) -> Bool
        switch self {
        case .equal: g = { $0 == $1 }
        case .and: g = { $0 && $1 }
        case .or: g = { $0 || $1 }
        case .xor: g = { $0 != $1 }
        default: throw RuntimeError("ordering comparison of booleans")
        }
        return try broadcastBinary(a, b, Bool.self, Bool.self, Bool.self, outDType: .bool, threads: t, g)
    }

    private func compare<T: Comparable & Sendable>(_ a: Tensor, _ b: Tensor, _ type: T.Type, _ t: Int) throws -> Tensor
    {
        let f: (T, T) -> Bool
        switch self {
        case .equal: f = { $0 == $1 }
        case .less: f = { $0 < $1 }
        case .greater: f = { $0 > $1 }
        case .lessOrEqual: f = { $0 <= $1 }
        case .greaterOrEqual: f = { $0 >= $1 }
        case .and, .or, .xor: throw RuntimeError("logical operator on \(a.dtype)")
        }
        return try broadcastBinary(a, b, T.self, T.self, Bool.self, outDType: .bool, threads: t, f)
    }
}

struct ComparisonKernel: Kernel {
    let op: ComparisonOp
    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        [try op.apply(inputs.required(0), inputs.required(1), context)]
    }
}

/// Where(condition, x, y) with three-way broadcasting.
struct WhereKernel: Kernel {
    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let c = try inputs.required(0), x = try inputs.required(1), y = try inputs.required(2)
        guard c.dtype == .bool else { throw RuntimeError("Where condition must be bool, got \(c.dtype)") }
        guard x.dtype == y.dtype else { throw RuntimeError("Where branches differ: \(x.dtype) and \(y.dtype)") }
        let shape = try broadcastShapes(broadcastShapes(c.shape, x.shape), y.shape)
        let out = try Tensor.uninitialized(x.dtype, shape)
        let plan = BroadcastPlan([c.shape, x.shape, y.shape], output: shape)
        let size = x.dtype.byteSize
        let pc = c.pointer(Bool.self), px = x.storage.base, py = y.storage.base
        let po = UnsafeMutableRawPointer(mutating: out.storage.base)
        plan.forEachRow(threads: context.threads) { offsets, inner, output, count in
            for i in 0..<count {
                let chosen =
                    pc[offsets[0] + i * inner[0]]
                    ? px + (offsets[1] + i * inner[1]) * size
                    : py + (offsets[2] + i * inner[2]) * size
                (po + (output + i) * size).copyMemory(from: chosen, byteCount: size)
            }
        }
        return [out]
    }
}
