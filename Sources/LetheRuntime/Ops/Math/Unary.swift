import LetheCore
#if canImport(Glibc)
import Glibc
#endif

/// Pointwise float functions that are never fused: Exp, Log, Sqrt, Reciprocal, Neg, Abs, Erf, …
enum UnaryOp: String, Sendable, CaseIterable {
    case Exp, Log, Sqrt, Reciprocal, Neg, Abs, Erf, Floor, Ceil, Round, Sign, Sin, Cos, Tan, Atan, Asin, Acos,
        Sinh, Cosh, Asinh, Acosh, Atanh, Softsign, IsNaN, IsInf

    func apply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        switch self {
        case .Exp: for i in 0..<n { y[i] = expf(x[i]) }
        case .Log: for i in 0..<n { y[i] = logf(x[i]) }
        case .Sqrt: for i in 0..<n { y[i] = x[i].squareRoot() }
        case .Reciprocal: for i in 0..<n { y[i] = 1 / x[i] }
        case .Neg: for i in 0..<n { y[i] = -x[i] }
        case .Abs: for i in 0..<n { y[i] = abs(x[i]) }
        case .Erf: for i in 0..<n { y[i] = erff(x[i]) }
        case .Floor: for i in 0..<n { y[i] = x[i].rounded(.down) }
        case .Ceil: for i in 0..<n { y[i] = x[i].rounded(.up) }
        case .Round: for i in 0..<n { y[i] = x[i].rounded(.toNearestOrEven) }
        case .Sign: for i in 0..<n { y[i] = x[i] > 0 ? 1 : (x[i] < 0 ? -1 : 0) }
        case .Sin: for i in 0..<n { y[i] = sinf(x[i]) }
        case .Cos: for i in 0..<n { y[i] = cosf(x[i]) }
        case .Tan: for i in 0..<n { y[i] = tanf(x[i]) }
        case .Atan: for i in 0..<n { y[i] = atanf(x[i]) }
        case .Asin: for i in 0..<n { y[i] = asinf(x[i]) }
        case .Acos: for i in 0..<n { y[i] = acosf(x[i]) }
        case .Sinh: for i in 0..<n { y[i] = sinhf(x[i]) }
        case .Cosh: for i in 0..<n { y[i] = coshf(x[i]) }
        case .Asinh: for i in 0..<n { y[i] = asinhf(x[i]) }
        case .Acosh: for i in 0..<n { y[i] = acoshf(x[i]) }
        case .Atanh: for i in 0..<n { y[i] = atanhf(x[i]) }
        case .Softsign: for i in 0..<n { y[i] = x[i] / (1 + abs(x[i])) }
        case .IsNaN, .IsInf: break
        }
    }
}

struct UnaryKernel: Kernel {
    let op: UnaryOp
    let detectPositive: Bool
    let detectNegative: Bool

    init(op: UnaryOp, detectPositive: Bool = true, detectNegative: Bool = true) {
        self.op = op
        self.detectPositive = detectPositive
        self.detectNegative = detectNegative
    }

    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        if op == .IsNaN || op == .IsInf { return [try classify(x)] }
        if x.dtype != .float32 { return [try integer(x)] }
        let y = try Tensor.uninitialized(.float32, x.shape)
        let px = x.floats, py = y.mutableFloats
        Parallel.forEach(x.elementCount, threads: context.threads, grain: 1 << 14) { range in
            op.apply(px + range.lowerBound, py + range.lowerBound, range.count)
        }
        return [y]
    }

    private func classify(_ x: Tensor) throws -> Tensor {
        let values = try requireFloat(x).floatValues()
        let flags: [Bool] =
            op == .IsNaN
            ? values.map(\.isNaN)
            : values.map {
                $0.isInfinite && (($0 > 0 && detectPositive) || ($0 < 0 && detectNegative))
            }
        return Tensor(shape: x.shape, values: flags)
    }

    private func integer(_ x: Tensor) throws -> Tensor {
        guard x.dtype.isInteger, [.Neg, .Abs, .Sign].contains(op) else {
            throw RuntimeError("\(op.rawValue) of \(x.dtype) is not supported")
        }
        let values = x.int64Values()
        let result: [Int64]
        switch op {
        case .Neg: result = values.map { 0 &- $0 }
        case .Abs: result = values.map { $0 < 0 ? 0 &- $0 : $0 }
        default: result = values.map { $0.signum() }
        }
        return try castInt64(result, shape: x.shape, to: x.dtype)
    }
}

/// Not on booleans.
struct NotKernel: Kernel {
    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        guard x.dtype == .bool else { throw RuntimeError("Not of \(x.dtype)") }
        let y = try Tensor.uninitialized(.bool, x.shape)
        let px = x.pointer(UInt8.self), py = y.mutablePointer(UInt8.self)
        for i in 0..<x.elementCount { py[i] = px[i] == 0 ? 1 : 0 }
        return [y]
    }
}
