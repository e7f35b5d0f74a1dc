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
                (target + (o * indices.count + k) * inner).copyMemory(from: source + (o * dim + i) * inner, byteCount: inner)
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
        guard indexTensor.rank == x.rank else { throw RuntimeError("GatherElements index rank \(indexTensor.rank) differs from \(x.rank)") }
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
                    guard coordinate >= 0, coordinate < x.shape[a] else { throw RuntimeError("GatherElements index \(raw) out of range") }
                } else if coordinate >= x.shape[axis] {
                    throw RuntimeError("GatherElements index shape \(shape) exceeds data \(x.shape)")
                }
                offset += coordinate * xStrides[axis]
            }
            (target + flat * size).copyMemory(from: source + offset * size, byteCount: size)
            var axis = shape.count - 1
            while axis >= 0 {
                position[axis] += 1
                if position[axis] < shape[axis] { break }
                position[axis] = 0
                axis -= 1
            }
        }
        return [out]
    }
}
