import LetheCore

/// Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout: new shapes over the same bytes.
struct ReshapeKernel: Kernel {
    let allowZero: Bool
    init(_ request: KernelRequest) throws { allowZero = try request.int("allowzero", 0) != 0 }
    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let requested = try inputs.required(1).intValues()
        var shape = requested
        var inferred: Int? = nil
        for (i, d) in requested.enumerated() {
            if d == 0 && !allowZero {
                guard i < x.rank else { throw RuntimeError("Reshape copies dimension \(i) of a rank-\(x.rank) input") }
                shape[i] = x.shape[i]
            } else if d == -1 {
                guard inferred == nil else { throw RuntimeError("Reshape to \(requested) has two -1 dimensions") }
                inferred = i
            } else if d < 0 {
                throw RuntimeError("Reshape to \(requested) has a negative dimension")
            }
        }
        // Refuse shapes whose element count overflows before multiplying them out.
        _ = try Tensor.checkedByteCount(.uint8, shape.enumerated().map { $0.offset == inferred ? 1 : $0.element })
        if let inferred {
            let known = shape.enumerated().filter { $0.offset != inferred }.reduce(1) { $0 * $1.element }
            guard known > 0, x.elementCount % known == 0 else {
                throw RuntimeError("cannot reshape \(x.shape) to \(requested)")
            }
            shape[inferred] = x.elementCount / known
        }
        guard Tensor.elementCount(shape) == x.elementCount else {
            throw RuntimeError("cannot reshape \(x.shape) to \(requested)")
        }
        return [x.reshaped(shape)]
    }
}

struct FlattenKernel: Kernel {
    let axis: Int
    init(_ request: KernelRequest) throws { axis = try request.int("axis", 1) }
    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let a = axis < 0 ? axis + x.rank : axis
        guard a >= 0, a <= x.rank else { throw RuntimeError("Flatten axis \(axis) for rank \(x.rank)") }
        return [x.reshaped([x.shape[..<a].reduce(1, *), x.shape[a...].reduce(1, *)])]
    }
}

struct SqueezeKernel: Kernel {
    let attributeAxes: [Int]?
    init(_ request: KernelRequest) throws { attributeAxes = try request.ints("axes") }
    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let axes = try inputs.optional(1).map { try $0.intValues() } ?? attributeAxes
        var shape: [Int]
        if let axes {
            let drop = Set(try axes.map { try normalizeAxis($0, rank: x.rank) })
            for axis in drop where x.shape[axis] != 1 {
                throw RuntimeError("Squeeze axis \(axis) has size \(x.shape[axis])")
            }
            shape = x.shape.enumerated().filter { !drop.contains($0.offset) }.map(\.element)
        } else {
            shape = x.shape.filter { $0 != 1 }
        }
        return [x.reshaped(shape)]
    }
}

struct UnsqueezeKernel: Kernel {
    let attributeAxes: [Int]?
    init(_ request: KernelRequest) throws { attributeAxes = try request.ints("axes") }
    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        guard let axes = try inputs.optional(1).map({ try $0.intValues() }) ?? attributeAxes else {
            throw RuntimeError("Unsqueeze needs axes")
        }
        let rank = x.rank + axes.count
        let inserted = Set(try axes.map { try normalizeAxis($0, rank: rank) })
        guard inserted.count == axes.count else { throw RuntimeError("Unsqueeze axes \(axes) repeat") }
        var shape: [Int] = []
        var next = 0
        for i in 0..<rank {
            if inserted.contains(i) { shape.append(1) } else { shape.append(x.shape[next]); next += 1 }
        }
        return [x.reshaped(shape)]
    }
}

/// Identity, Dropout (inference: no dropping; optional mask of ones).
struct IdentityKernel: Kernel {
    let maskOutput: Bool
    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        if inputs.count > 2, let training = inputs[2], training.elementCount == 1, training.int64Values()[0] != 0 {
            throw RuntimeError("Dropout in training mode is not supported (inference only)")
        }
        if maskOutput { return [x, Tensor(shape: x.shape, values: [Bool](repeating: true, count: x.elementCount))] }
        return [x]
    }
}

/// Shape (with start/end), Size.
struct ShapeKernel: Kernel {
    let start: Int
    let end: Int?
    let size: Bool
    init(_ request: KernelRequest) throws {
        start = try request.int("start", 0)
        end = try request.optionalInt("end")
        size = request.node.opType == "Size"
    }
    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        if size { return [Tensor(scalar: Int64(x.elementCount))] }
        let clamp = { (v: Int) in Swift.max(0, Swift.min(x.rank, v < 0 ? v + x.rank : v)) }
        let lower = clamp(start), upper = clamp(end ?? x.rank)
        return [Tensor.int64(lower < upper ? Array(x.shape[lower..<upper]) : [])]
    }
}
