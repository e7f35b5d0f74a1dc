import LetheCore

/// Concat along one axis, and its inverse Split.
struct ConcatKernel: Kernel {
    let axis: Int
    init(_ request: KernelRequest) throws {
        guard let axis = try request.optionalInt("axis") else { throw Unsupported("Concat without axis") }
        self.axis = axis
    }
    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let parts = inputs.compactMap { $0 }
        guard let first = parts.first else { throw RuntimeError("Concat of nothing") }
        let a = try normalizeAxis(axis, rank: first.rank)
        var shape = first.shape
        shape[a] = 0
        for part in parts {
            guard part.dtype == first.dtype, part.rank == first.rank,
                (0..<first.rank).allSatisfy({ $0 == a || part.shape[$0] == first.shape[$0] })
            else {
                throw RuntimeError("Concat inputs \(parts.map(\.shape)) do not agree off axis \(a)")
            }
            shape[a] += part.shape[a]
        }
        let out = try Tensor.uninitialized(first.dtype, shape)
        let size = first.dtype.byteSize
        let outer = shape[..<a].reduce(1, *), inner = shape[(a + 1)...].reduce(1, *) * size
        let target = UnsafeMutableRawPointer(mutating: out.storage.base)
        let rowBytes = shape[a] * inner
        var column = 0
        for part in parts {
            let bytes = part.shape[a] * inner
            let source = part.storage.base
            if bytes > 0 {
                for o in 0..<outer {
                    (target + o * rowBytes + column).copyMemory(from: source + o * bytes, byteCount: bytes)
                }
            }
            column += bytes
        }
        return [out]
    }
}

struct SplitKernel: Kernel {
    let axis: Int
    let attributeSplit: [Int]?
    let outputs: Int
    let numOutputs: Int?
    init(_ request: KernelRequest) throws {
        axis = try request.int("axis", 0)
        attributeSplit = try request.ints("split")
        outputs = request.node.outputs.count
        numOutputs = try request.optionalInt("num_outputs")
    }
    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let a = try normalizeAxis(axis, rank: x.rank)
        let length = x.shape[a]
        var sizes: [Int]
        if let given = try inputs.optional(1).map({ try $0.intValues() }) ?? attributeSplit {
            sizes = given
        } else {
            let parts = numOutputs ?? outputs
            guard parts > 0 else { throw RuntimeError("Split into no parts") }
            let chunk = (length + parts - 1) / parts
            sizes = (0..<parts).map { min(chunk, max(0, length - $0 * chunk)) }
        }
        guard sizes.reduce(0, +) == length, sizes.allSatisfy({ $0 >= 0 }) else {
            throw RuntimeError("Split sizes \(sizes) do not add up to \(length)")
        }
        let strides = contiguousStrides(x.shape)
        var results: [Tensor] = []
        var start = 0
        for size in sizes {
            var shape = x.shape
            shape[a] = size
            results.append(try gatherStrided(x, shape: shape, strides: strides, offset: start * strides[a]))
            start += size
        }
        return results
    }
}
