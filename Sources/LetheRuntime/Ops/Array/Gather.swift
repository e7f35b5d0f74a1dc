import LetheCore

/// Gather: whole slices along `axis` picked by an index tensor (negative indices count from the end).
struct GatherKernel: Kernel {
    let axis: Int
    init(_ request: KernelRequest) throws { axis = try request.int("axis", 0) }
    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0), indicesTensor = try inputs.required(1)
        let a = try normalizeAxis(axis, rank: x.rank)
        let indices = try indicesTensor.intValues()
        let dim = x.shape[a]
        let outer = x.shape[..<a].reduce(1, *), inner = x.shape[(a + 1)...].reduce(1, *) * x.dtype.byteSize
        let shape = Array(x.shape[..<a]) + indicesTensor.shape + Array(x.shape[(a + 1)...])
        let out = try Tensor.uninitialized(x.dtype, shape)
        let source = x.storage.base, target = UnsafeMutableRawPointer(mutating: out.storage.base)
        var resolved = [Int](repeating: 0, count: indices.count)
        for (k, index) in indices.enumerated() {
            let i = index < 0 ? index + dim : index
            guard i >= 0, i < dim else { throw RuntimeError("Gather index \(index) is out of range for size \(dim)") }
            resolved[k] = i
        }
        guard inner > 0 else { return [out] }
        for o in 0..<outer {
            for (k, i) in resolved.enumerated() {
                (target + (o * indices.count + k) * inner).copyMemory(
                    from: source + (o * dim + i) * inner, byteCount: inner)
            }
        }
        return [out]
    }
}

/// GatherElements: `out[i][j][k] = x[index[i][j][k]][j][k]` (for axis 0), same shape as the indices.
struct GatherElementsKernel: Kernel {
    let axis: Int
    init(_ request: KernelRequest) throws { axis = try request.int("axis", 0) }
    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0), indexTensor = try inputs.required(1)
        let a = try normalizeAxis(axis, rank: x.rank)
        guard indexTensor.rank == x.rank else {
            throw RuntimeError("GatherElements index rank \(indexTensor.rank) differs from \(x.rank)")
        }
        let indices = try indexTensor.intValues()
        let out = try Tensor.uninitialized(x.dtype, indexTensor.shape)
        let size = x.dtype.byteSize
        let xStrides = contiguousStrides(x.shape)
        let shape = indexTensor.shape
        let source = x.storage.base, target = UnsafeMutableRawPointer(mutating: out.storage.base)
        var position = [Int](repeating: 0, count: shape.count)
        for (flat, raw) in indices.enumerated() {
            var offset = 0
            for axis in 0..<shape.count {
                var coordinate = position[axis]
                if axis == a {
                    coordinate = raw < 0 ? raw + x.shape[a] : raw
                    guard coordinate >= 0, coordinate < x.shape[a] else {
                        throw RuntimeError("GatherElements index \(raw) out of range")
                    }
                } else if coordinate >= x.shape[axis] {
                    throw RuntimeError("GatherElements index shape \(shape) exceeds data \(x.shape)")
                }
                offset += coordinate * xStrides[axis]
            }
            (target + flat * size).copyMemory(from: source + offset * size, byteCount: size)
            advance(&position, in: shape)
        }
        return [out]
    }
}

/// GatherND: slices of `data` addressed by the last axis of `indices`, after `batch_dims` leading axes
/// that data and indices share (ScatterND's inverse; Swin V2's dynamo export reads its relative
/// position table with it). Negative indices count from the end.
struct GatherNDKernel: Kernel {
    let batchDims: Int
    init(_ request: KernelRequest) throws {
        batchDims = try request.int("batch_dims", 0)
        guard batchDims >= 0 else { throw Unsupported("GatherND batch_dims \(batchDims)") }
    }
    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let data = try inputs.required(0), indexTensor = try inputs.required(1)
        let b = batchDims
        guard data.rank >= 1, indexTensor.rank >= 1, b < min(data.rank, indexTensor.rank),
            Array(data.shape[..<b]) == Array(indexTensor.shape[..<b])
        else {
            throw RuntimeError(
                "GatherND data \(data.shape) and indices \(indexTensor.shape) do not share \(b) batch axes")
        }
        let depth = indexTensor.shape[indexTensor.rank - 1]
        guard depth <= data.rank - b else {
            throw RuntimeError("GatherND indices address \(depth) axes of data \(data.shape) after \(b) batch axes")
        }
        let indices = try indexTensor.intValues()
        let batches = data.shape[..<b].reduce(1, *)
        let perBatch = indexTensor.shape[b..<(indexTensor.rank - 1)].reduce(1, *)
        let size = data.dtype.byteSize
        let sliceBytes = data.shape[(b + depth)...].reduce(1, *) * size
        let batchBytes = data.shape[b...].reduce(1, *) * size
        let strides = contiguousStrides(data.shape)
        let shape = Array(indexTensor.shape.dropLast()) + Array(data.shape[(b + depth)...])
        let out = try Tensor.uninitialized(data.dtype, shape)
        let source = data.storage.base, target = UnsafeMutableRawPointer(mutating: out.storage.base)
        for batch in 0..<batches {
            for j in 0..<perBatch {
                let slice = batch * perBatch + j
                var offset = 0
                for axis in 0..<depth {
                    let raw = indices[slice * depth + axis], dim = data.shape[b + axis]
                    let index = raw < 0 ? raw + dim : raw
                    guard index >= 0, index < dim else {
                        throw RuntimeError("GatherND index \(raw) is out of range for axis \(b + axis) of size \(dim)")
                    }
                    offset += index * strides[b + axis]
                }
                if sliceBytes > 0 {
                    (target + slice * sliceBytes).copyMemory(
                        from: source + batch * batchBytes + offset * size, byteCount: sliceBytes)
                }
            }
        }
        return [out]
    }
}
