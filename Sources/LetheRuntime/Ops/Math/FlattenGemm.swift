import LetheCore

/// A Flatten (axis 1) read only by a Gemm with a constant 2-D weight, run as one step that takes
/// the activation in its channel blocks: the weight's input columns are permuted (once per layout)
/// into the order of the blocked buffer, so the product reads the buffer as it lies. The sample
/// CNN's last pool → Flatten → Linear (32 × 7 × 7 → 128) otherwise transposed every map out of its
/// blocks for the Flatten, a few % of its largest step.
struct FlattenGemmKernel: BlockedLayoutKernel {
    let flatten: FlattenKernel
    let gemm: GemmKernel
    private let permuted = Locked<[BlockedLayout: GemmKernel]>([:])

    init(flatten: FlattenKernel, gemm: GemmKernel) {
        self.flatten = flatten
        self.gemm = gemm
    }

    /// Whether a Flatten feeding `gemm` as its left-hand side may be fused: axis 1 (the batch kept)
    /// and a constant 2-D weight read untransposed on the left, of at most `weightBytesLimit` (the
    /// permuted copy is held beside it).
    static func suits(_ flatten: FlattenKernel, _ gemm: GemmKernel) -> Bool {
        guard flatten.axis == 1, !gemm.transposeA, let b = gemm.b, b.rank == 2 else { return false }
        return b.elementCount * MemoryLayout<Float>.stride <= weightBytesLimit
    }

    static let weightBytesLimit = 64 << 20

    func acceptsBlocked(input index: Int) -> Bool { index == 0 }
    var mayEmitBlocked: Bool { false }

    func run(
        laidOut inputs: [LaidOutTensor?], emitBlocked: Bool, _ context: ExecutionContext
    ) throws
        -> [LaidOutTensor]
    {
        let rest = inputs.dropFirst().map { $0?.tensor }
        if let input = inputs.first ?? nil, let layout = input.blocked, layout.shape.count >= 3,
            let blockedGemm = try gemm(for: layout)
        {
            let x = input.tensor.reshaped([layout.batch, layout.imageElements])
            return try blockedGemm.run([x] + rest, context).map { LaidOutTensor($0) }
        }
        let plain = try inputs.first??.plain(threads: context.threads)
        let flat = try flatten.run([plain], context)
        return try gemm.run(flat + rest, context).map { LaidOutTensor($0) }
    }

    /// The Gemm whose weight reads images laid out as `layout` (any batch), made on first use.
    private func gemm(for layout: BlockedLayout) throws -> GemmKernel? {
        let key = BlockedLayout(shape: [1] + layout.shape.dropFirst(), block: layout.block)
        if let made = permuted.withLock({ $0[key] }) { return made }
        guard let b = gemm.b else { return nil }
        let (channels, plane) = (layout.channels, layout.shape.dropFirst(2).reduce(1, *))
        let inner = channels * plane
        let outer = gemm.transposeB ? b.shape[0] : b.shape[1]
        guard inner == (gemm.transposeB ? b.shape[1] : b.shape[0]) else {
            throw RuntimeError("Gemm inner size \(b.shape) does not match the flattened \(layout.shape)")
        }
        // Plain column c·plane + p lies in the blocked image at (c / block · plane + p) · block +
        // c % block, or channels-last (block 0) at p · channels + c; padding channels meet zeros.
        let blocked = key.imageElements
        func position(_ column: Int) -> Int {
            let (c, p) = column.quotientAndRemainder(dividingBy: plane)
            return layout.block == 0
                ? p * channels + c : (c / layout.block * plane + p) * layout.block + c % layout.block
        }
        let weight = Tensor(zeros: .float32, shape: gemm.transposeB ? [outer, blocked] : [blocked, outer])
        let source = b.floats, target = weight.mutableFloats
        for column in 0..<inner {
            let to = position(column)
            if gemm.transposeB {
                for row in 0..<outer { target[row * blocked + to] = source[row * inner + column] }
            } else {
                (target + to * outer).update(from: source + column * outer, count: outer)
            }
        }
        let made = gemm.replacingWeight(weight)
        return permuted.withLock { cache in
            if let existing = cache[key] { return existing }
            cache[key] = made
            return made
        }
    }
}
