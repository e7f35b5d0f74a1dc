import LetheCore
import LetheIR

/// Constant, ConstantOfShape, Range: tensors made from attributes and small inputs.
func makeConstant(_ request: KernelRequest) throws -> any Kernel {
    let value = try constantValue(request.node)
    return ClosureKernel { _, _ in [value] }
}

/// The value of a Constant node, from whichever attribute it uses.
func constantValue(_ node: Node) throws -> Tensor {
    guard let (name, attribute) = node.attributes.first else { throw Unsupported("Constant without a value") }
    switch (name, attribute) {
    case ("value", .tensor(let t)) where !t.dtype.isNumeric: throw Unsupported("Constant of element type \(t.dtype)")
    case ("value", .tensor(let t)): return t.dtype == .float16 || t.dtype == .bfloat16 ? t.asFloat32() : t
    case ("value_float", .float(let v)): return Tensor(scalar: v)
    case ("value_floats", .floats(let v)): return Tensor(shape: [v.count], values: v)
    case ("value_int", .int(let v)): return Tensor(scalar: Int64(v))
    case ("value_ints", .ints(let v)): return Tensor.int64(v)
    default: throw Unsupported("Constant attribute '\(name)' of kind \(attribute.kindName)")
    }
}

struct ConstantOfShapeKernel: Kernel {
    let value: Tensor
    init(_ request: KernelRequest) throws {
        value = request.node.attribute("value")?.tensorValue ?? Tensor(shape: [1], values: [Float(0)])
        guard value.elementCount == 1 else {
            throw Unsupported("ConstantOfShape value with \(value.elementCount) elements")
        }
        guard value.dtype.isNumeric else { throw Unsupported("ConstantOfShape value of element type \(value.dtype)") }
    }
    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let shape = try inputs.required(0).intValues()
        _ = try Tensor.checkedByteCount(value.dtype, shape)
        let out = try Tensor.uninitialized(value.dtype, shape)
        let size = value.dtype.byteSize
        let target = UnsafeMutableRawPointer(mutating: out.storage.base)
        for i in 0..<out.elementCount { (target + i * size).copyMemory(from: value.storage.base, byteCount: size) }
        return [out]
    }
}

struct RangeKernel: Kernel {
    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let start = try inputs.required(0), limit = try inputs.required(1), delta = try inputs.required(2)
        if start.dtype.isInteger {
            let s = start.int64Values()[0], l = limit.int64Values()[0], d = delta.int64Values()[0]
            guard d != 0 else { throw RuntimeError("Range delta 0") }
            let steps = ((Double(l) - Double(s)) / Double(d)).rounded(.up)
            guard steps < Double(1 << 31) else { throw RuntimeError("Range of \(steps) elements") }
            let count = max(0, Int(steps))
            return [try castInt64((0..<count).map { s + Int64($0) * d }, shape: [count], to: start.dtype)]
        }
        let s = start.doubleValues()[0], l = limit.doubleValues()[0], d = delta.doubleValues()[0]
        guard d != 0 else { throw RuntimeError("Range delta 0") }
        let steps = ((l - s) / d).rounded(.up)
        guard steps.isFinite, steps < Double(1 << 31) else { throw RuntimeError("Range of \(steps) elements") }
        let count = max(0, Int(steps))
        if start.dtype == .float64 { return [Tensor(shape: [count], values: (0..<count).map { s + Double($0) * d })] }
        let fs = Float(s), fd = Float(d)
        return [Tensor(shape: [count], values: (0..<count).map { fs + Float($0) * fd })]
    }
}
