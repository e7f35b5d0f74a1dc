import LetheCore

/// ScatterND: a copy of `data` in which the slices addressed by the last axis of `indices` are
/// replaced by (or, with `reduction`, combined with) the matching slices of `updates`.
///
/// Opsets 11 and 13 only replace; 16 adds `reduction` add/mul and 18 max/min. Swin's shifted-window
/// mask is built with it (both exporters), as are in-place slice assignments in general.
struct ScatterNDKernel: Kernel {
    enum Reduction: String { case none, add, mul, max, min }
    let reduction: Reduction

    init(_ request: KernelRequest) throws {
        let name = try request.string("reduction", "none")
        guard let reduction = Reduction(rawValue: name) else { throw Unsupported("ScatterND reduction '\(name)'") }
        // Each reduction exists only from the opset that introduced it; an older model naming one is malformed.
        let introduced = [Reduction.none: 11, .add: 16, .mul: 16, .max: 18, .min: 18][reduction]!
        guard request.opset >= introduced else {
            throw Unsupported("ScatterND reduction '\(name)' needs opset \(introduced), model has \(request.opset)")
        }
        self.reduction = reduction
    }

    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let data = try inputs.required(0), indexTensor = try inputs.required(1), updates = try inputs.required(2)
        guard indexTensor.rank >= 1, data.rank >= 1 else {
            throw RuntimeError(
                "ScatterND needs data and indices of rank ≥ 1, got \(data.shape) and \(indexTensor.shape)")
        }
        let depth = indexTensor.shape[indexTensor.rank - 1]
        guard depth <= data.rank else {
            throw RuntimeError("ScatterND indices address \(depth) axes of data with shape \(data.shape)")
        }
        let batchShape = Array(indexTensor.shape.dropLast()), sliceShape = Array(data.shape[depth...])
        guard updates.shape == batchShape + sliceShape else {
            throw RuntimeError(
                "ScatterND updates \(updates.shape) should be \(batchShape + sliceShape) for data \(data.shape) and indices \(indexTensor.shape)"
            )
        }
        guard updates.dtype == data.dtype else {
            throw RuntimeError("ScatterND updates are \(updates.dtype), data is \(data.dtype)")
        }
        let indices = try indexTensor.intValues()
        let sliceCount = Tensor.elementCount(batchShape), sliceSize = Tensor.elementCount(sliceShape)
        let strides = contiguousStrides(data.shape)
        // Every index is resolved (negative ones counted from the end) and checked before anything is written.
        var offsets = [Int](repeating: 0, count: sliceCount)
        for s in 0..<sliceCount {
            var offset = 0
            for axis in 0..<depth {
                let raw = indices[s * depth + axis], dim = data.shape[axis]
                let index = raw < 0 ? raw + dim : raw
                guard index >= 0, index < dim else {
                    throw RuntimeError("ScatterND index \(raw) is out of range for axis \(axis) of size \(dim)")
                }
                offset += index * strides[axis]
            }
            offsets[s] = offset
        }

        let out = try Tensor.uninitialized(data.dtype, data.shape)
        let size = data.dtype.byteSize
        let target = UnsafeMutableRawPointer(mutating: out.storage.base), source = updates.storage.base
        if data.elementCount > 0 { target.copyMemory(from: data.storage.base, byteCount: data.elementCount * size) }
        guard sliceSize > 0, sliceCount > 0 else { return [out] }
        // Slices are applied in index order, so with duplicate indices the last update wins (as in the
        // ONNX reference) and reductions accumulate every update.
        switch reduction {
        case .none:
            for (s, offset) in offsets.enumerated() {
                (target + offset * size).copyMemory(from: source + s * sliceSize * size, byteCount: sliceSize * size)
            }
        case .add, .mul, .max, .min:
            switch data.dtype {
            case .float32: combineFloats(Float.self, target, source, offsets, sliceSize)
            case .float64: combineFloats(Double.self, target, source, offsets, sliceSize)
            case .int64: combineIntegers(Int64.self, target, source, offsets, sliceSize)
            case .int32: combineIntegers(Int32.self, target, source, offsets, sliceSize)
            case .int16: combineIntegers(Int16.self, target, source, offsets, sliceSize)
            case .int8: combineIntegers(Int8.self, target, source, offsets, sliceSize)
            case .uint64: combineIntegers(UInt64.self, target, source, offsets, sliceSize)
            case .uint32: combineIntegers(UInt32.self, target, source, offsets, sliceSize)
            case .uint16: combineIntegers(UInt16.self, target, source, offsets, sliceSize)
            case .uint8: combineIntegers(UInt8.self, target, source, offsets, sliceSize)
            default: throw RuntimeError("ScatterND reduction '\(reduction.rawValue)' on \(data.dtype) is not supported")
            }
        }
        return [out]
    }

    /// Calls `body` with each target slice and the update slice that lands on it, in update order.
    private func eachSlice<T>(
        _: T.Type, _ target: UnsafeMutableRawPointer, _ source: UnsafeRawPointer, _ offsets: [Int],
        _ sliceSize: Int, _ body: (UnsafeMutablePointer<T>, UnsafePointer<T>) -> Void
    ) {
        let out = target.assumingMemoryBound(to: T.self), updates = source.assumingMemoryBound(to: T.self)
        for (s, offset) in offsets.enumerated() { body(out + offset, updates + s * sliceSize) }
    }

    private func combineFloats<T: BinaryFloatingPoint>(
        _: T.Type, _ target: UnsafeMutableRawPointer, _ source: UnsafeRawPointer,
        _ offsets: [Int], _ sliceSize: Int
    ) {
        let reduction = self.reduction
        eachSlice(T.self, target, source, offsets, sliceSize) { line, update in
            switch reduction {
            case .add: for i in 0..<sliceSize { line[i] += update[i] }
            case .mul: for i in 0..<sliceSize { line[i] *= update[i] }
            // NaN propagates, as numpy.maximum/minimum (the reference) do.
            case .max: for i in 0..<sliceSize where update[i] > line[i] || update[i].isNaN { line[i] = update[i] }
            case .min: for i in 0..<sliceSize where update[i] < line[i] || update[i].isNaN { line[i] = update[i] }
            case .none: break
            }
        }
    }

    private func combineIntegers<T: FixedWidthInteger>(
        _: T.Type, _ target: UnsafeMutableRawPointer, _ source: UnsafeRawPointer,
        _ offsets: [Int], _ sliceSize: Int
    ) {
        let reduction = self.reduction
        eachSlice(T.self, target, source, offsets, sliceSize) { line, update in
            switch reduction {
            // Wrapping arithmetic: integer overflow wraps in ONNX Runtime and NumPy rather than trapping.
            case .add: for i in 0..<sliceSize { line[i] = line[i] &+ update[i] }
            case .mul: for i in 0..<sliceSize { line[i] = line[i] &* update[i] }
            case .max: for i in 0..<sliceSize { line[i] = Swift.max(line[i], update[i]) }
            case .min: for i in 0..<sliceSize { line[i] = Swift.min(line[i], update[i]) }
            case .none: break
            }
        }
    }
}
