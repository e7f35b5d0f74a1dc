import LetheCore

/// MaxPool that also takes a channel-blocked input (a pool between convolutions) and pools it
/// through oneDNN in that layout; plain inputs, and sizes oneDNN refuses, go to `PoolKernel`.
struct BlockedMaxPoolKernel: BlockedLayoutKernel {
    let plain: PoolKernel
    /// Nil for AveragePool, MaxPool with an Indices output or a dilated window.
    let dnnl: DNNLMaxPooling?

    init(_ request: KernelRequest) throws {
        plain = try PoolKernel(request)
        var geometry = plain.geometry
        try geometry.complete(rank: geometry.kernel.count)
        dnnl =
            plain.isMax && !plain.wantsIndices
            ? DNNLMaxPooling(kernel: geometry.kernel, strides: geometry.strides, dilations: geometry.dilations) : nil
    }

    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        try plain.run(inputs, context)
    }

    func acceptsBlocked(input index: Int) -> Bool { index == 0 && dnnl != nil }
    var mayEmitBlocked: Bool { dnnl != nil }

    func run(
        laidOut inputs: [LaidOutTensor?], emitBlocked: Bool, _ context: ExecutionContext
    ) throws
        -> [LaidOutTensor]
    {
        if let x = inputs.first ?? nil, let layout = x.blocked, let dnnl {
            var geometry = plain.geometry
            try geometry.complete(rank: geometry.kernel.count)
            let resolved = try geometry.resolve(Array(layout.shape[2...]))
            let outputLayout = BlockedLayout(shape: Array(layout.shape[..<2]) + resolved.output, block: layout.block)
            let y = try Tensor.uninitialized(.float32, [outputLayout.elementCount])
            if try dnnl.run(
                x.tensor.floats, layout, padBegin: resolved.begin, output: resolved.output, y: y.mutableFloats,
                threads: context.threads)
            {
                let pooled = LaidOutTensor(y, blocked: outputLayout)
                return [emitBlocked ? pooled : LaidOutTensor(try pooled.plain(threads: context.threads))]
            }
        }
        let plainInputs = try inputs.map { try $0?.plain(threads: context.threads) }
        return try plain.run(plainInputs, context).map { LaidOutTensor($0) }
    }
}
