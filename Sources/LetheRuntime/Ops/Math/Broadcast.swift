import LetheCore

/// Drives a broadcasting elementwise operation: the output is split into rows whose inputs are
/// each either contiguous (stride 1) or constant (stride 0), and `row` runs once per row.
///
/// Dimensions whose strides chain are merged first, so `[N, C, H, W] + [1, C, 1, 1]` runs as
/// `N·C` rows of `H·W` elements against one bias value each.
struct BroadcastPlan {
    let shape: [Int]
    private let dims: [Int]
    private let strides: [[Int]]

    init(_ shapes: [[Int]], output: [Int]) {
        shape = output
        var dims = output
        var strides = shapes.map { broadcastStrides($0, to: output) }
        // Drop size-1 dimensions; they never move an index.
        var keep = dims.indices.filter { dims[$0] != 1 }
        if keep.isEmpty { keep = [] }
        dims = keep.map { dims[$0] }
        strides = strides.map { s in keep.map { s[$0] } }
        // Merge neighbours whose strides chain for every operand.
        var i = dims.count - 2
        while i >= 0 {
            let mergeable = strides.allSatisfy { $0[i] == $0[i + 1] * dims[i + 1] }
            if mergeable {
                dims[i] *= dims[i + 1]
                dims.remove(at: i + 1)
                for k in strides.indices {
                    strides[k][i] = strides[k][i + 1]
                    strides[k].remove(at: i + 1)
                }
            }
            i -= 1
        }
        if dims.isEmpty {
            dims = [1]
            strides = strides.map { _ in [1] }
        }
        // The innermost stride must be 0 or 1; otherwise add a unit inner dimension.
        if strides.contains(where: { $0.last! > 1 }) {
            dims.append(1)
            strides = strides.map { $0 + [1] }
        }
        self.dims = dims
        self.strides = strides
    }

    var elementCount: Int { Tensor.elementCount(shape) }
    private var rowLength: Int { dims.last! }
    private var rowCount: Int { dims.dropLast().reduce(1, *) }

    /// Calls `row(offsets, innerStrides, outputOffset, length)` for every row, in parallel.
    func forEachRow(threads: Int, _ row: (_ offsets: [Int], _ inner: [Int], _ output: Int, _ count: Int) -> Void) {
        let length = rowLength, rows = rowCount
        let inner = strides.map { $0.last! }
        guard elementCount > 0 else { return }
        if rows == 1 {
            Parallel.forEach(length, threads: threads, grain: 1 << 15) { range in
                row(inner.map { $0 * range.lowerBound }, inner, range.lowerBound, range.count)
            }
            return
        }
        let outer = Array(dims.dropLast())
        let grain = max(1, (1 << 15) / max(1, length))
        Parallel.forEach(rows, threads: threads, grain: grain) { range in
            var index = [Int](repeating: 0, count: outer.count)
            var rest = range.lowerBound
            for axis in stride(from: outer.count - 1, through: 0, by: -1) {
                index[axis] = rest % outer[axis]
                rest /= outer[axis]
            }
            var offsets = strides.map { s in zip(index, s).reduce(0) { $0 + $1.0 * $1.1 } }
            for r in range {
                row(offsets, inner, r * length, length)
                // Advance the odometer.
                var axis = outer.count - 1
                while axis >= 0 {
                    index[axis] += 1
                    for k in offsets.indices { offsets[k] += strides[k][axis] }
                    if index[axis] < outer[axis] { break }
                    for k in offsets.indices { offsets[k] -= strides[k][axis] * outer[axis] }
                    index[axis] = 0
                    axis -= 1
                }
            }
        }
    }
}

/// The row loop of a binary operation, specialised for each stride pattern so the common cases vectorise.
@inline(__always)
func binaryRow<A, B, R>(
    _ a: UnsafePointer<A>, _ sa: Int, _ b: UnsafePointer<B>, _ sb: Int,
    _ out: UnsafeMutablePointer<R>, _ n: Int, _ f: (A, B) -> R
) {
    if sa == 1 && sb == 1 {
        for i in 0..<n { out[i] = f(a[i], b[i]) }
    } else if sa == 1 {
        let y = b[0]
        for i in 0..<n { out[i] = f(a[i], y) }
    } else if sb == 1 {
        let x = a[0]
        for i in 0..<n { out[i] = f(x, b[i]) }
    } else {
        let value = f(a[0], b[0])
        for i in 0..<n { out[i] = value }
    }
}

/// Broadcasts `a` and `b` (elements `A`, `B`) into a new tensor of `outType`.
@inline(__always)
func broadcastBinary<A, B, R>(
    _ a: Tensor, _ b: Tensor, _ aType: A.Type, _ bType: B.Type, _ outType: R.Type,
    outDType: DType, threads: Int, _ f: @escaping (A, B) -> R
) throws -> Tensor {
    let shape = try broadcastShapes(a.shape, b.shape)
    let out = try Tensor.uninitialized(outDType, shape)
    let plan = BroadcastPlan([a.shape, b.shape], output: shape)
    let pa = a.pointer(A.self), pb = b.pointer(B.self), po = out.mutablePointer(R.self)
    plan.forEachRow(threads: threads) { offsets, inner, output, count in
        binaryRow(pa + offsets[0], inner[0], pb + offsets[1], inner[1], po + output, count, f)
    }
    return out
}

func broadcastFloat(
    _ a: Tensor, _ b: Tensor, _ context: ExecutionContext,
    _ f: @escaping (Float, Float) -> Float
) throws -> Tensor {
    try broadcastBinary(a, b, Float.self, Float.self, Float.self, outDType: .float32, threads: context.threads, f)
}
