import LetheCore

/// Copies `source` into a new tensor of `shape`, reading element `index` at `Σ index[i]·strides[i]`
/// (strides in elements; 0 repeats). Used by Transpose, Expand, Slice and Tile.
func gatherStrided(_ source: Tensor, shape: [Int], strides: [Int], offset: Int = 0, threads: Int = 1) throws -> Tensor {
    let out = try Tensor.uninitialized(source.dtype, shape)
    let count = out.elementCount
    guard count > 0 else { return out }
    switch source.dtype.byteSize {
    case 1: stridedCopy(source.pointer(UInt8.self) + offset, out.mutablePointer(UInt8.self), shape, strides, threads)
    case 2: stridedCopy(source.pointer(UInt16.self) + offset, out.mutablePointer(UInt16.self), shape, strides, threads)
    case 4: stridedCopy(source.pointer(UInt32.self) + offset, out.mutablePointer(UInt32.self), shape, strides, threads)
    case 8: stridedCopy(source.pointer(UInt64.self) + offset, out.mutablePointer(UInt64.self), shape, strides, threads)
    default:
        throw RuntimeError("layout operations on \(source.dtype) are not supported")
    }
    return out
}

private func stridedCopy<T>(
    _ source: UnsafePointer<T>, _ target: UnsafeMutablePointer<T>, _ fullShape: [Int],
    _ fullStrides: [Int], _ threads: Int
) {
    // Axes of size 1 address nothing; without them a trailing one (magika's [N, 512, 256, 1]
    // transposed to [N, 256, 512, 1]) no longer makes every element a row of its own.
    let kept = fullShape.indices.filter { fullShape[$0] != 1 }
    let shape = kept.map { fullShape[$0] }, strides = kept.map { fullStrides[$0] }
    let rank = shape.count
    if rank == 0 { target[0] = source[0]; return }
    let length = shape[rank - 1], step = strides[rank - 1]
    if step != 1, step != 0, let contiguous = strides.dropLast().lastIndex(of: 1) {
        tiledCopy(source, target, shape, strides, contiguous: contiguous, threads)
        return
    }
    let outer = Array(shape.dropLast())
    let rows = outer.reduce(1, *)
    Parallel.forEach(rows, threads: threads, grain: max(1, 32768 / max(1, length))) { range in
        var index = [Int](repeating: 0, count: outer.count)
        var rest = range.lowerBound
        for axis in stride(from: outer.count - 1, through: 0, by: -1) {
            index[axis] = rest % outer[axis]
            rest /= outer[axis]
        }
        var offset = zip(index, strides).reduce(0) { $0 + $1.0 * $1.1 }
        for row in range {
            let line = target + row * length
            let start = source + offset
            if step == 1 {
                line.update(from: start, count: length)
            } else if step == 0 {
                line.update(repeating: start[0], count: length)
            } else {
                for i in 0..<length { line[i] = start[i * step] }
            }
            var axis = outer.count - 1
            while axis >= 0 {
                index[axis] += 1
                offset += strides[axis]
                if index[axis] < outer[axis] { break }
                offset -= strides[axis] * outer[axis]
                index[axis] = 0
                axis -= 1
            }
        }
    }
}

/// `stridedCopy` when the output's last axis is not the input's contiguous one but axis
/// `contiguous` is: reading the output a row at a time takes one element from each of `length`
/// cache lines, so the copy runs in 16 × 64 tiles instead, reading 64 bytes of each source line
/// it touches and writing 16 output rows.
private func tiledCopy<T>(
    _ source: UnsafePointer<T>, _ target: UnsafeMutablePointer<T>, _ shape: [Int], _ strides: [Int],
    contiguous q: Int, _ threads: Int
) {
    let rank = shape.count
    let outStrides = contiguousStrides(shape)
    let others = (0..<(rank - 1)).filter { $0 != q }
    let otherCount = others.reduce(1) { $0 * shape[$1] }
    let a = shape[q], b = shape[rank - 1], inB = strides[rank - 1], outA = outStrides[q]
    let strip = 16
    let strips = (a + strip - 1) / strip
    Parallel.forEach(otherCount * strips, threads: threads, grain: max(1, 32768 / max(1, strip * b))) { range in
        for task in range {
            var rest = task / strips
            var inOffset = 0, outOffset = 0
            for axis in others.reversed() {
                let i = rest % shape[axis]
                rest /= shape[axis]
                inOffset += i * strides[axis]
                outOffset += i * outStrides[axis]
            }
            let first = (task % strips) * strip, last = min(a, first + strip)
            // 16 × 64 tiles: the 64 source lines of a tile stay in L1 while all 16 rows take from them.
            var column = 0
            while column < b {
                let end = min(b, column + 64)
                for i in first..<last {
                    let from = source + inOffset + i, to = target + outOffset + i * outA
                    for j in column..<end { to[j] = from[j * inB] }
                }
                column = end
            }
        }
    }
}

/// `tensor` with its axes reordered: output axis i is input axis `permutation[i]`.
func permute(_ tensor: Tensor, _ permutation: [Int], threads: Int = 1) throws -> Tensor {
    guard permutation.count == tensor.rank, Set(permutation) == Set(0..<tensor.rank) else {
        throw RuntimeError("permutation \(permutation) does not fit rank \(tensor.rank)")
    }
    let own = contiguousStrides(tensor.shape)
    return try gatherStrided(
        tensor, shape: permutation.map { tensor.shape[$0] },
        strides: permutation.map { own[$0] }, threads: threads)
}

struct TransposeKernel: Kernel {
    let permutation: [Int]?
    init(_ request: KernelRequest) throws { permutation = try request.ints("perm") }
    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let perm = permutation ?? Array((0..<x.rank).reversed())
        return [try permute(x, perm, threads: context.threads)]
    }
}
