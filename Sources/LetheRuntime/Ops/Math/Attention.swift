import LetheCore
import LetheIR

/// How a fused node reads one input: through a permutation of its axes and then, optionally, at
/// one index of the permuted axis 0 — what the Transposes and TransposedGathers that fed the
/// pattern would have copied, read in place instead.
struct AxisView: Equatable {
    /// The axes of the input in view order; nil reads them as they are.
    var permutation: [Int]?
    /// One index into the permuted axis 0, which the view then drops (negative counts from the end).
    var index: Int?

    static let identity = AxisView()

    /// The viewed shape, element strides into the input and the offset of element zero.
    func resolve(_ shape: [Int]) throws -> (shape: [Int], strides: [Int], offset: Int) {
        let own = contiguousStrides(shape)
        guard let permutation else {
            guard index == nil else { throw RuntimeError("an indexed view needs a permutation") }
            return (shape, own, 0)
        }
        guard permutation.count == shape.count, Set(permutation) == Set(0..<shape.count) else {
            throw RuntimeError("permutation \(permutation) does not fit an input of shape \(shape)")
        }
        var viewed = permutation.map { shape[$0] }, strides = permutation.map { own[$0] }
        guard let index else { return (viewed, strides, 0) }
        let i = index < 0 ? index + viewed[0] : index
        guard i >= 0, i < viewed[0] else {
            throw RuntimeError("view index \(index) is out of range for size \(viewed[0]) of shape \(shape)")
        }
        let offset = i * strides[0]
        viewed.removeFirst()
        strides.removeFirst()
        return (viewed, strides, offset)
    }
}

/// Scaled dot-product attention, `softmax(scale · A·B) · V` over the last axis with NumPy batch
/// broadcasting (`WorkingGraph.fuseAttention`), one (batch, head) at a time: the score matrix is
/// produced, normalised and consumed while it is in cache, never written whole, and the operands
/// and the output are read and written through strides, so the head split and merge Transposes
/// around it copy nothing.
struct AttentionKernel: Kernel {
    /// How inputs 0 (A, the queries), 1 (B, the transposed keys) and 2 (V) are read.
    let views: [AxisView]
    let scale: Float
    /// A Transpose of the product that the output is written in (its last axis stays last).
    let outputPermutation: [Int]?

    /// Attribute names of the three input views: `<prefix>_perm` and `<prefix>_index`.
    static let viewPrefixes = ["a", "b", "v"]

    init(_ request: KernelRequest) throws {
        views = try Self.viewPrefixes.map { prefix in
            AxisView(permutation: try request.ints("\(prefix)_perm"), index: try request.optionalInt("\(prefix)_index"))
        }
        scale = try request.float("scale", 1)
        outputPermutation = try request.ints("out_perm")
    }

    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        var operands: [StridedBatch] = []
        for (i, view) in views.enumerated() {
            let tensor = try requireFloat(inputs.required(i))
            let (shape, strides, offset) = try view.resolve(tensor.shape)
            operands.append(StridedBatch(base: tensor.floats + offset, shape: shape, strides: strides))
        }
        // MatMul promotes a vector to a matrix and drops that axis again, which moves the axis the
        // softmax runs along: such (rare) operands take the unfused kernels instead.
        if operands.contains(where: { $0.shape.count < 2 }) {
            return [try runUnfused(inputs, context)]
        }
        let (a, b, v) = (operands[0], operands[1], operands[2])
        let m = a.rows, k = a.columns, n = b.columns, d = v.columns
        guard b.rows == k, v.rows == n else {
            throw RuntimeError("Attention sizes differ: A \(a.shape), B \(b.shape), V \(v.shape)")
        }
        let batch = try broadcastShapes(broadcastShapes(a.batchShape, b.batchShape), v.batchShape)
        let logicalShape = batch + [m, d]
        let (outShape, outStrides) = try outputLayout(logicalShape)
        let y = try Tensor.uninitialized(.float32, outShape)
        let out = StridedBatch(base: y.mutableFloats, shape: logicalShape, strides: outStrides)
        let outRowStride = m == 1 ? d : out.rowStride
        let batches = batch.reduce(1, *)
        guard batches > 0, m > 0, d > 0 else { return [y] }
        let aOffsets = a.batchOffsets(in: batch), bOffsets = b.batchOffsets(in: batch)
        let vOffsets = v.batchOffsets(in: batch), outOffsets = out.batchOffsets(in: batch)
        let scale = self.scale
        let work = UncheckedSendable((a, b, v, out))
        // Short sequences (a ViT on small images: 50 tokens, heads of 16) take the register kernel;
        // BLAS spent more on packing such heads than on multiplying them.
        let small = n <= 128 && d <= 64
        Parallel.forEach(batches, threads: context.threads) { range in
            let (a, b, v, out) = work.value
            let scores = UnsafeMutablePointer<Float>.allocate(
                capacity: max(1, m * n, small ? VectorMath.attentionScratch(n: n, k: k) : 0))
            defer { scores.deallocate() }
            var copies = MatrixCopies()
            defer { copies.release() }
            for index in range {
                let left = copies.readable(a, at: aOffsets(index), slot: 0)
                let right = copies.readable(b, at: bOffsets(index), slot: 1)
                if small, !left.transposed {
                    let values = copies.readable(v, at: vOffsets(index), slot: 2)
                    if !values.transposed,
                        VectorMath.attentionHead(
                            queries: left.pointer, left.leading, keys: right.pointer, right.leading,
                            keysTransposed: right.transposed, values: values.pointer, values.leading,
                            into: out.base + outOffsets(index), outRowStride, m: m, n: n, k: k, d: d, scale: scale,
                            scratch: scores)
                    {
                        continue
                    }
                }
                MatrixMultiply.multiply(
                    transposeA: left.transposed, transposeB: right.transposed, m: m, n: n, k: k, alpha: scale,
                    a: left.pointer, lda: left.leading, b: right.pointer, ldb: right.leading,
                    beta: 0, c: scores, ldc: n, threads: 1)
                VectorMath.softmaxRows(scores, scores, rows: m, count: n)
                let values = copies.readable(v, at: vOffsets(index), slot: 2)
                // The output's last axis is contiguous (outputLayout), so BLAS writes it in place.
                MatrixMultiply.multiply(
                    transposeA: false, transposeB: values.transposed, m: m, n: d, k: n,
                    a: scores, lda: n, b: values.pointer, ldb: values.leading,
                    beta: 0, c: out.base + outOffsets(index), ldc: outRowStride, threads: 1)
            }
        }
        return [y]
    }

    /// The pattern node by node, on copies of the viewed operands: what the fusion replaced.
    private func runUnfused(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> Tensor {
        var operands: [Tensor] = []
        for (i, view) in views.enumerated() {
            let tensor = try requireFloat(inputs.required(i))
            let (shape, strides, offset) = try view.resolve(tensor.shape)
            operands.append(try gatherStrided(tensor, shape: shape, strides: strides, offset: offset))
        }
        func request(_ opType: String, _ attributes: [(name: String, value: Attribute)] = []) -> KernelRequest {
            let node = Node(opType: opType, inputs: ["x", "y"], outputs: ["z"], attributes: attributes)
            return KernelRequest(node: node, opset: 13, constants: [nil, nil])
        }
        let product = try MatMulKernel(request("MatMul"))
        let scores = try product.run([operands[0], operands[1]], context)[0]
        if scale != 1 {
            let p = scores.mutableFloats
            for i in 0..<scores.elementCount { p[i] *= scale }
        }
        let softmax = try SoftmaxKernel(request("Softmax", [(name: "axis", value: .int(-1))]))
        let probabilities = try softmax.run([scores], context)[0]
        let result = try product.run([probabilities, operands[2]], context)[0]
        guard let outputPermutation else { return result }
        return try permute(result, outputPermutation, threads: context.threads)
    }

    /// The stored shape and, per axis of the product, its stride in the stored tensor.
    private func outputLayout(_ logical: [Int]) throws -> (shape: [Int], strides: [Int]) {
        guard let permutation = outputPermutation else { return (logical, contiguousStrides(logical)) }
        guard permutation.count == logical.count, Set(permutation) == Set(0..<logical.count),
            permutation.last == logical.count - 1
        else {
            throw RuntimeError(
                "output permutation \(permutation) does not fit the product's shape \(logical) with its last axis last")
        }
        let stored = permutation.map { logical[$0] }
        let storedStrides = contiguousStrides(stored)
        var strides = [Int](repeating: 0, count: logical.count)
        for (position, axis) in permutation.enumerated() { strides[axis] = storedStrides[position] }
        return (stored, strides)
    }
}

/// A batch of `rows × columns` matrices at element strides from `base` (a view of an operand).
private struct StridedBatch {
    let base: UnsafeMutablePointer<Float>
    let shape: [Int]
    let strides: [Int]

    init(base: UnsafePointer<Float>, shape: [Int], strides: [Int]) {
        self.init(base: UnsafeMutablePointer(mutating: base), shape: shape, strides: strides)
    }

    init(base: UnsafeMutablePointer<Float>, shape: [Int], strides: [Int]) {
        self.base = base
        self.shape = shape
        self.strides = strides
    }

    var rows: Int { shape[shape.count - 2] }
    var columns: Int { shape[shape.count - 1] }
    var rowStride: Int { strides[strides.count - 2] }
    var columnStride: Int { strides[strides.count - 1] }
    var batchShape: [Int] { Array(shape.dropLast(2)) }

    /// The element offset of each matrix of `batch` (this batch shape broadcast to it).
    func batchOffsets(in batch: [Int]) -> (Int) -> Int {
        let lead = batch.count - (shape.count - 2)
        let steps = (0..<batch.count).map { axis in
            axis < lead || shape[axis - lead] == 1 ? 0 : strides[axis - lead]
        }
        return { index in
            var rest = index, offset = 0
            for axis in stride(from: batch.count - 1, through: 0, by: -1) {
                offset += (rest % batch[axis]) * steps[axis]
                rest /= batch[axis]
            }
            return offset
        }
    }

    /// How BLAS reads one matrix in place — row-major, or transposed when its columns are the
    /// strided axis — or nil when neither axis is contiguous.
    func layout() -> (transposed: Bool, leading: Int)? {
        let rowStride = rows == 1 ? max(1, columns) : self.rowStride
        let columnStride = columns == 1 ? max(1, rows) : self.columnStride
        if columns == 1 || columnStride == 1, rowStride >= max(1, columns) { return (false, rowStride) }
        if rows == 1 || rowStride == 1, columnStride >= max(1, rows) { return (true, columnStride) }
        return nil
    }

    /// Copies one matrix at `offset` into `target` as a packed row-major matrix.
    func gather(at offset: Int, into target: UnsafeMutablePointer<Float>) {
        let source = base + offset
        for r in 0..<rows {
            for c in 0..<columns { target[r * columns + c] = source[r * rowStride + c * columnStride] }
        }
    }
}

/// A thread's packed copies of operands BLAS cannot read in place, one buffer per slot, reused
/// across the (batch, head) pairs it runs.
private struct MatrixCopies {
    private var buffers: [Int: (pointer: UnsafeMutablePointer<Float>, count: Int)] = [:]

    private mutating func buffer(slot: Int, count: Int) -> UnsafeMutablePointer<Float> {
        if let existing = buffers[slot], existing.count >= count { return existing.pointer }
        buffers[slot]?.pointer.deallocate()
        let pointer = UnsafeMutablePointer<Float>.allocate(capacity: max(1, count))
        buffers[slot] = (pointer, count)
        return pointer
    }

    /// The matrix at `offset` as BLAS reads it: in place when one axis is contiguous, else packed.
    mutating func readable(
        _ matrix: StridedBatch, at offset: Int, slot: Int
    ) -> (pointer: UnsafePointer<Float>, transposed: Bool, leading: Int) {
        if let layout = matrix.layout() {
            return (UnsafePointer(matrix.base + offset), layout.transposed, layout.leading)
        }
        let packed = buffer(slot: slot, count: matrix.rows * matrix.columns)
        matrix.gather(at: offset, into: packed)
        return (UnsafePointer(packed), false, max(1, matrix.columns))
    }

    mutating func release() {
        for (_, buffer) in buffers { buffer.pointer.deallocate() }
        buffers = [:]
    }
}
