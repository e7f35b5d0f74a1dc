import LetheCore

/// A Conv whose only reader is a MaxPool, run as one step. When one image's convolution output is
/// large (a 224² network's first layer: 3.2 MB an image, 205 MB for a batch of 64), each thread
/// convolves one image at a time into a scratch buffer and pools it straight into the output,
/// so the full-size map is never held (it set the peak memory) and the pool reads it from cache.
/// Small maps, and sizes oneDNN refuses, run the two kernels one after the other.
struct ConvPoolKernel: BlockedLayoutKernel {
    let conv: ConvKernel
    let pool: BlockedMaxPoolKernel
    /// Bytes of one image's convolution output from which the image-by-image path is taken: below
    /// this the per-call costs of two primitives an image outweigh what it saves.
    static let imageBytesThreshold = 512 * 1024

    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        try run(laidOut: inputs.map { $0.map { LaidOutTensor($0) } }, emitBlocked: false, context).map(\.tensor)
    }

    func acceptsBlocked(input index: Int) -> Bool { conv.acceptsBlocked(input: index) }
    var mayEmitBlocked: Bool { true }

    func run(
        laidOut inputs: [LaidOutTensor?], emitBlocked: Bool, _ context: ExecutionContext
    ) throws
        -> [LaidOutTensor]
    {
        if let fused = try runByImage(inputs, emitBlocked: emitBlocked, context) { return fused }
        // The pool takes blocked inputs, so the convolution may leave its output blocked.
        let middle = try conv.run(laidOut: inputs, emitBlocked: true, context)
        let pooled = try pool.run(laidOut: middle.map { $0 }, emitBlocked: emitBlocked, context)
        // The map between the two is this step's own: handed back to the plan's pool, the next
        // chunk reuses it. Freed instead, a map of 4 MiB or more (ResNet-18's first one at 32², 64
        // images) went back to the system and faulted in its pages again every chunk.
        var map: Tensor? = middle.first?.tensor
        _ = consume middle
        BufferPool.current?.recycle(&map)
        return pooled
    }

    /// The image-by-image path, or nil (nothing written) when it does not apply.
    func runByImage(
        _ inputs: [LaidOutTensor?], emitBlocked: Bool, _ context: ExecutionContext
    ) throws
        -> [LaidOutTensor]?
    {
        guard let input = inputs.first ?? nil, var x = Optional(input), input.tensor.dtype == .float32,
            let dnnl = conv.dnnl, let poolDNNL = pool.dnnl, let weight = conv.weight,
            conv.activationAfterDNNL == nil
        else { return nil }
        let shape = x.shape
        var single = try ConvolutionShape(
            x: [1] + shape[1...], w: weight.shape, group: conv.group, geometry: conv.geometry)
        let rank = shape.count - 2
        guard shape[0] > 0, single.outChannels * single.outPlane * 4 >= Self.imageBytesThreshold,
            let slicing = try dnnl.slicing(single, rank: rank, threads: 1), let block = slicing.destinationBlock
        else { return nil }
        var convOutput = [1, single.outChannels, single.outDepth, single.outHeight, single.outWidth]
        convOutput.removeSubrange(2..<(5 - rank))
        let middle = BlockedLayout(shape: convOutput, block: block)
        var geometry = pool.plain.geometry
        try geometry.complete(rank: geometry.kernel.count)
        let resolved = try geometry.resolve(Array(convOutput[2...]))
        guard try poolDNNL.accepts(middle, padBegin: resolved.begin, output: resolved.output) else { return nil }
        if let blocked = x.blocked, blocked.block != slicing.sourceBlock {
            x = LaidOutTensor(try x.plain(threads: context.threads))
        }
        let batch = shape[0]
        let output = BlockedLayout(shape: [batch, single.outChannels] + resolved.output, block: block)
        let y = try Tensor.uninitialized(.float32, [output.elementCount])
        let imageIn = x.blocked?.imageElements ?? shape[1...].reduce(1, *)
        let sourceBlocked = x.blocked != nil
        single.batch = 1
        let failure = Locked<RuntimeError?>(nil)
        let pointers = UncheckedSendable((x.tensor.floats, y.mutableFloats))
        Parallel.forEach(batch, threads: context.threads) { images in
            let (source, target) = pointers.value
            let scratch = DNNLScratchPool.take(middle.elementCount * MemoryLayout<Float>.stride)
            defer { DNNLScratchPool.give(scratch) }
            let map = scratch.pointer.assumingMemoryBound(to: Float.self)
            for image in images {
                do {
                    try dnnl.run(
                        slicing, single, x: source + image * imageIn, sourceBlocked: sourceBlocked, y: map,
                        destinationBlocked: true)
                    let pooled = try poolDNNL.run(
                        map, middle, padBegin: resolved.begin, output: resolved.output,
                        y: target + image * output.imageElements, threads: 1)
                    if !pooled { throw RuntimeError("oneDNN refused a max pool it had accepted") }
                } catch {
                    let error = error as? RuntimeError ?? RuntimeError("oneDNN convolution and pool: \(error)")
                    failure.withLock { if $0 == nil { $0 = error } }
                }
            }
        }
        if let error = failure.withLock({ $0 }) { throw error }
        let pooled = LaidOutTensor(y, blocked: output)
        return [emitBlocked ? pooled : LaidOutTensor(try pooled.plain(threads: context.threads))]
    }
}
