import LetheCore

/// Slice: starts/ends/axes/steps from attributes (opset < 10) or inputs, clamped as NumPy does.
struct SliceKernel: Kernel {
    let attributeStarts: [Int]?
    let attributeEnds: [Int]?
    let attributeAxes: [Int]?
    init(_ request: KernelRequest) throws {
        attributeStarts = try request.ints("starts")
        attributeEnds = try request.ints("ends")
        attributeAxes = try request.ints("axes")
    }
    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let starts: [Int], ends: [Int], axesGiven: [Int]?, steps: [Int]?
        if let attributeStarts, let attributeEnds {
            starts = attributeStarts; ends = attributeEnds; axesGiven = attributeAxes; steps = nil
        } else {
            starts = try inputs.required(1).intValues()
            ends = try inputs.required(2).intValues()
            axesGiven = try inputs.optional(3).map { try $0.intValues() }
            steps = try inputs.optional(4).map { try $0.intValues() }
        }
        let axes = try (axesGiven ?? Array(0..<starts.count)).map { try normalizeAxis($0, rank: x.rank) }
        guard starts.count == ends.count, axes.count == starts.count, steps.map({ $0.count == starts.count }) ?? true
        else {
            throw RuntimeError("Slice starts/ends/axes/steps lengths differ")
        }
        var shape = x.shape
        let own = contiguousStrides(x.shape)
        var strides = own
        var offset = 0
        for (k, axis) in axes.enumerated() {
            let step = steps?[k] ?? 1
            guard step != 0 else { throw RuntimeError("Slice step 0") }
            let dim = x.shape[axis]
            var start = starts[k], end = ends[k]
            if start < 0 { start += dim }
            if end < 0 { end += dim }
            if step > 0 {
                start = min(max(start, 0), dim)
                end = min(max(end, 0), dim)
                shape[axis] = end > start ? (end - start + step - 1) / step : 0
            } else {
                start = min(max(start, -1), dim - 1)
                end = min(max(end, -1), dim - 1)
                shape[axis] = start > end ? (start - end - step - 1) / (-step) : 0
            }
            if shape[axis] > 0 { offset += start * own[axis] }
            strides[axis] = own[axis] * step
        }
        if Tensor.elementCount(shape) == 0 { return [try Tensor.uninitialized(x.dtype, shape)] }
        // A slice that keeps everything (exporters emit them, magika two around its convolution)
        // is the input itself: tensors are never written after they are produced.
        if shape == x.shape && offset == 0 && strides == own { return [x] }
        return [try gatherStrided(x, shape: shape, strides: strides, offset: offset, threads: context.threads)]
    }
}

/// Expand (broadcast to a shape) and Tile (repeat).
struct ExpandKernel: Kernel {
    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let requested = try inputs.required(1).intValues()
        let shape = try broadcastShapes(x.shape, requested)
        if shape == x.shape { return [x] }
        return [
            try gatherStrided(x, shape: shape, strides: broadcastStrides(x.shape, to: shape), threads: context.threads)
        ]
    }
}

struct TileKernel: Kernel {
    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let repeats = try inputs.required(1).intValues()
        guard repeats.count == x.rank, repeats.allSatisfy({ $0 >= 0 }) else {
            throw RuntimeError("Tile repeats \(repeats) for rank \(x.rank)")
        }
        // View the output as [r0, d0, r1, d1, …] with stride 0 on the repeat axes.
        let own = contiguousStrides(x.shape)
        var shape: [Int] = [], strides: [Int] = []
        for axis in 0..<x.rank {
            shape += [repeats[axis], x.shape[axis]]
            strides += [0, own[axis]]
        }
        let tiled = try gatherStrided(x, shape: shape, strides: strides, threads: context.threads)
        return [tiled.reshaped(zip(repeats, x.shape).map { $0 * $1 })]
    }
}
