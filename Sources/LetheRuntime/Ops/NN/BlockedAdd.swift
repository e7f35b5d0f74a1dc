import LetheCore

/// Add (with its fused activation) that also takes two tensors in the same channel-blocked layout,
/// the residual connection between convolutions, and adds them over the padded buffers without
/// reordering either; every other case goes to the plain kernel.
struct BlockedAddKernel: BlockedLayoutKernel {
    let plain: ArithmeticKernel
    /// Whether the activation keeps zero at zero: the blocked padding channels a convolution reads
    /// next must stay zero, so only then may the sum stay blocked.
    private let keepsPaddingZero: Bool

    init(_ plain: ArithmeticKernel) {
        self.plain = plain
        var zero: Float = 0
        plain.activation?.apply(&zero, 1)
        keepsPaddingZero = zero == 0
    }

    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        try plain.run(inputs, context)
    }

    func acceptsBlocked(input index: Int) -> Bool { index < 2 }
    var mayEmitBlocked: Bool { keepsPaddingZero }

    func run(
        laidOut inputs: [LaidOutTensor?], emitBlocked: Bool, _ context: ExecutionContext
    ) throws
        -> [LaidOutTensor]
    {
        guard inputs.count == 2, let a = inputs[0], let b = inputs[1], let layout = a.blocked, layout == b.blocked
        else {
            let plainInputs = try inputs.map { try $0?.plain(threads: context.threads) }
            return try plain.run(plainInputs, context).map { LaidOutTensor($0) }
        }
        let y = try Tensor.uninitialized(.float32, [layout.elementCount])
        let activation = plain.activation
        let pointers = UncheckedSendable((a.tensor.floats, b.tensor.floats, y.mutableFloats))
        Parallel.forEach(layout.elementCount, threads: context.threads, grain: 1 << 15) { range in
            let (a, b, y) = pointers.value
            for i in range { y[i] = a[i] + b[i] }
            activation?.apply(y + range.lowerBound, range.count)
        }
        let sum = LaidOutTensor(y, blocked: layout)
        return [emitBlocked && keepsPaddingZero ? sum : LaidOutTensor(try sum.plain(threads: context.threads))]
    }
}
