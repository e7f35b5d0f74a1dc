import LetheCore

/// Raw element access for kernels. Tensors the runtime allocates are writable; inputs are only read.
extension Tensor {
    @inline(__always) func pointer<T>(_ type: T.Type) -> UnsafePointer<T> {
        storage.base.assumingMemoryBound(to: T.self)
    }

    /// Write access to a tensor the runtime has just allocated (never to a user's or a mapped tensor).
    @inline(__always) func mutablePointer<T>(_ type: T.Type) -> UnsafeMutablePointer<T> {
        UnsafeMutableRawPointer(mutating: storage.base).assumingMemoryBound(to: T.self)
    }

    var floats: UnsafePointer<Float> { pointer(Float.self) }
    var mutableFloats: UnsafeMutablePointer<Float> { mutablePointer(Float.self) }

    /// An uninitialised tensor (every element must be written).
    static func uninitialized(_ dtype: DType, _ shape: [Int]) throws -> Tensor {
        let bytes = try checkedByteCount(dtype, shape)
        let storage = BufferPool.current?.take(bytes) ?? TensorStorage(uninitializedByteCount: bytes)
        return Tensor(dtype: dtype, shape: shape, storage: storage)
    }

    static func zeros(_ dtype: DType, _ shape: [Int]) throws -> Tensor {
        _ = try checkedByteCount(dtype, shape)
        return Tensor(zeros: dtype, shape: shape)
    }

    /// Bytes for `shape`, refusing negative dimensions, overflow and sizes beyond the memory limit.
    static func checkedByteCount(_ dtype: DType, _ shape: [Int]) throws -> Int {
        guard shape.allSatisfy({ $0 >= 0 }), let bytes = Tensor.byteCount(dtype: dtype, shape: shape) else {
            throw RuntimeError("tensor of shape \(shape) is too large or has a negative dimension")
        }
        let limit = Limits.default.maxTensorBytes
        guard bytes <= limit else {
            throw LimitError(what: "bytes of a \(shape) \(dtype) tensor", value: bytes, limit: limit)
        }
        return bytes
    }

    /// This tensor as float32 (the compute type), converting other numeric dtypes.
    func asFloat32() -> Tensor {
        if dtype == .float32 { return self }
        var out = Tensor(zeros: .float32, shape: shape)
        out.withUnsafeMutableBufferPointer(of: Float.self) { convertToFloat(into: $0) }
        return out
    }

    /// Values as Int for shape arithmetic (int32/int64 inputs).
    func intValues() throws -> [Int] {
        guard dtype.isInteger else { throw RuntimeError("expected an integer tensor, got \(dtype)") }
        return int64Values().map { Int(truncatingIfNeeded: $0) }
    }

    static func int64(_ values: [Int], shape: [Int]? = nil) -> Tensor {
        Tensor(shape: shape ?? [values.count], values: values.map { Int64($0) })
    }
}

/// Row-major strides of `shape`.
/// Steps the multi-index `position` to the next element of `shape` in row-major order (back to all
/// zeros after the last one).
@inline(__always)
func advance(_ position: inout [Int], in shape: [Int]) {
    var axis = shape.count - 1
    while axis >= 0 {
        position[axis] += 1
        if position[axis] < shape[axis] { return }
        position[axis] = 0
        axis -= 1
    }
}

func contiguousStrides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    var running = 1
    for axis in stride(from: shape.count - 1, through: 0, by: -1) {
        strides[axis] = running
        running *= shape[axis]
    }
    return strides
}

/// Resolves a possibly negative axis against `rank`. A scalar has no axis: callers index the
/// shape with the result.
func normalizeAxis(_ axis: Int, rank: Int) throws -> Int {
    let resolved = axis < 0 ? axis + rank : axis
    guard resolved >= 0, resolved < rank else {
        throw RuntimeError("axis \(axis) is out of range for rank \(rank)")
    }
    return resolved
}

/// NumPy broadcast of two shapes.
func broadcastShapes(_ a: [Int], _ b: [Int]) throws -> [Int] {
    let rank = max(a.count, b.count)
    var result = [Int](repeating: 1, count: rank)
    for i in 0..<rank {
        let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
        let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
        if da == db || db == 1 {
            result[i] = da
        } else if da == 1 {
            result[i] = db
        } else {
            throw RuntimeError("shapes \(a) and \(b) do not broadcast")
        }
    }
    return result
}

/// Strides for reading a tensor of `shape` as if broadcast to `target` (0 on broadcast axes).
func broadcastStrides(_ shape: [Int], to target: [Int]) -> [Int] {
    let own = contiguousStrides(shape)
    let offset = target.count - shape.count
    return (0..<target.count).map { i in
        i < offset ? 0 : (shape[i - offset] == 1 && target[i] != 1 ? 0 : own[i - offset])
    }
}
