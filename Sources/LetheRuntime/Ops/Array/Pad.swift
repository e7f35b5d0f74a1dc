import LetheCore

/// Pad: constant, reflect, edge and wrap modes; pads from the attribute (opset < 11) or input, with
/// optional axes (opset ≥ 18). Negative pads crop.
struct PadKernel: Kernel {
    enum Mode: String { case constant, reflect, edge, wrap }
    let mode: Mode
    let attributePads: [Int]?
    let attributeValue: Float

    init(_ request: KernelRequest) throws {
        let name = try request.string("mode", "constant")
        guard let mode = Mode(rawValue: name) else { throw Unsupported("Pad mode '\(name)'") }
        self.mode = mode
        attributePads = try request.ints("pads") ?? request.ints("paddings")
        attributeValue = try request.float("value", 0)
    }

    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let rank = x.rank
        var pads = [Int](repeating: 0, count: 2 * rank)
        if let given = try inputs.optional(1).map({ try $0.intValues() }) ?? attributePads {
            if let axesTensor = inputs.optional(3) {
                let axes = try axesTensor.intValues().map { try normalizeAxis($0, rank: rank) }
                guard given.count == 2 * axes.count else { throw RuntimeError("Pad pads/axes lengths differ") }
                for (k, axis) in axes.enumerated() {
                    pads[axis] = given[k]
                    pads[axis + rank] = given[k + axes.count]
                }
            } else {
                guard given.count == 2 * rank else {
                    throw RuntimeError("Pad has \(given.count) pads for rank \(rank)")
                }
                pads = given
            }
        }
        guard pads.allSatisfy({ abs($0) < 1 << 40 }) else { throw RuntimeError("Pad amounts \(pads) out of range") }
        let shape = (0..<rank).map { x.shape[$0] + pads[$0] + pads[$0 + rank] }
        guard shape.allSatisfy({ $0 >= 0 }) else { throw RuntimeError("Pad crops below zero") }
        let out = try Tensor.uninitialized(x.dtype, shape)
        let count = out.elementCount
        if count == 0 { return [out] }
        let size = x.dtype.byteSize
        // The fill value, in the tensor's dtype.
        var fill = [UInt8](repeating: 0, count: size)
        let valueTensor = inputs.optional(2)
        if mode == .constant {
            let filler: Tensor
            if let valueTensor, valueTensor.elementCount > 0 {
                guard valueTensor.elementCount == 1 else {
                    throw RuntimeError("Pad constant_value must be one value, got shape \(valueTensor.shape)")
                }
                filler = try castTensor(valueTensor.reshaped([]), to: x.dtype)
            } else {
                filler = try castTensor(Tensor(scalar: attributeValue), to: x.dtype)
            }
            filler.withUnsafeBytes { fill = Array($0) }
        }
        if mode != .constant && x.elementCount == 0 { throw RuntimeError("Pad \(mode.rawValue) of an empty tensor") }
        let source = x.storage.base, target = UnsafeMutableRawPointer(mutating: out.storage.base)
        let xStrides = contiguousStrides(x.shape)
        var position = [Int](repeating: 0, count: rank)
        for flat in 0..<count {
            var offset = 0, inside = true
            for axis in 0..<rank {
                var i = position[axis] - pads[axis]
                let dim = x.shape[axis]
                if i < 0 || i >= dim {
                    switch mode {
                    case .constant: inside = false
                    case .edge: i = min(max(i, 0), dim - 1)
                    case .wrap: i = ((i % dim) + dim) % dim
                    case .reflect:
                        if dim == 1 {
                            i = 0
                        } else {
                            let period = 2 * (dim - 1)
                            i = ((i % period) + period) % period
                            if i >= dim { i = period - i }
                        }
                    }
                }
                if !inside { break }
                offset += i * xStrides[axis]
            }
            if inside {
                (target + flat * size).copyMemory(from: source + offset * size, byteCount: size)
            } else {
                fill.withUnsafeBytes { (target + flat * size).copyMemory(from: $0.baseAddress!, byteCount: size) }
            }
            advance(&position, in: shape)
        }
        return [out]
    }
}
