import CVectorMath
import LetheCore

/// A Conv whose only reader is a MaxPool, run as one step. When one image's convolution output is
/// large (a 224² network's first layer: 3.2 MB an image, 205 MB for a batch of 64), each thread
/// convolves one image at a time into a scratch buffer and pools it straight into the output,
/// so the full-size map is never held (it set the peak memory) and the pool reads it from cache.
/// Small maps, and sizes oneDNN refuses, run the two kernels one after the other.
struct ConvPoolKernel: BlockedLayoutKernel {
    let conv: ConvKernel
    let pool: BlockedMaxPoolKernel
    /// The weight as `lethe_blocked_conv_pool` reads it, laid out on the first run that takes it.
    private let blockedTaps = Locked<Tensor?>(nil)

    init(conv: ConvKernel, pool: BlockedMaxPoolKernel) {
        self.conv = conv
        self.pool = pool
    }
    /// Bytes of one image's convolution output from which the image-by-image path is taken: below
    /// this the per-call costs of two primitives an image outweigh what it saves.
    static let imageBytesThreshold = 512 * 1024

    func acceptsBlocked(input index: Int) -> Bool { conv.acceptsBlocked(input: index) }
    var mayEmitBlocked: Bool { true }

    func run(
        laidOut inputs: [LaidOutTensor?], emitBlocked: Bool, _ context: ExecutionContext
    ) throws
        -> [LaidOutTensor]
    {
        if let fused = try runSingleChannel(inputs, context) {
            // A tapped or plain-reading pool output is transposed out of its blocks (a few % of the kernel).
            return emitBlocked ? fused : try fused.map { LaidOutTensor(try $0.plain(threads: context.threads)) }
        }
        if let fused = try runBlockedChannels(inputs, emitBlocked: emitBlocked, context) { return fused }
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

    /// Input channels in 16-channel blocks convolved and pooled 2 × 2 in one AVX-512 kernel
    /// (`lethe_blocked_conv_pool`), written blocked or plain as the reader wants: a small network's
    /// middle layer (the sample CNN's 16 → 32 channels on 14²), where oneDNN wrote the whole map, the
    /// pool read it back, and the map went out of its blocks for the Flatten. Nil when the layout, the
    /// shapes, the epilogue (`registerWeight`) or the pool (`twoByTwoPooling`) do not suit it, or the
    /// map is larger than `blockedMapLimit` (where oneDNN's kernels were not measured against it).
    func runBlockedChannels(
        _ inputs: [LaidOutTensor?], emitBlocked: Bool, _ context: ExecutionContext
    ) throws
        -> [LaidOutTensor]?
    {
        guard let input = inputs.first ?? nil, let blocked = input.blocked, blocked.block == 16,
            blocked.shape.count == 4, blocked.channels % 16 == 0, input.tensor.dtype == .float32,
            blocked.shape[2] * blocked.shape[3] <= Self.blockedMapLimit, let weight = registerWeight,
            weight.shape[1] == blocked.channels
        else { return nil }
        let (batch, inChannels, height, width) = (
            blocked.shape[0], blocked.shape[1], blocked.shape[2], blocked.shape[3]
        )
        guard batch > 0, let (pads, pooled) = try twoByTwoPooling(height: height, width: width, kernel: weight.shape)
        else { return nil }
        let taps = try blockedTaps.withLock { taps in
            if let taps { return taps }
            let laid = try Tensor.uninitialized(.float32, weight.shape)
            lethe_blocked_conv_pool_taps(
                weight.floats, weight.shape[0], inChannels, weight.shape[2], weight.shape[3], laid.mutableFloats)
            taps = laid
            return laid
        }
        let outChannels = weight.shape[0]
        let outputShape = [batch, outChannels] + pooled
        let layout = BlockedLayout(shape: outputShape, block: 16)
        let y = try Tensor.uninitialized(.float32, emitBlocked ? [layout.elementCount] : outputShape)
        let relu: Int32 = conv.activation == .relu ? 1 : 0
        let (kh, kw) = (weight.shape[2], weight.shape[3])
        let imageIn = blocked.imageElements, imageOut = layout.imageElements
        let pointers = UncheckedSendable((input.tensor.floats, taps.floats, conv.bias?.floats, y.mutableFloats))
        let done = Self.forEachSlice(batch, threads: context.threads) { images in
            let (source, taps, bias, target) = pointers.value
            return lethe_blocked_conv_pool(
                source + images.lowerBound * imageIn, images.count, inChannels, height, width, taps, bias,
                outChannels, kh, kw, pads.top, pads.left, pads.bottom, pads.right, relu, emitBlocked ? 0 : 1,
                target + images.lowerBound * imageOut)
        }
        guard done else { return nil }
        return [emitBlocked ? LaidOutTensor(y, blocked: layout) : LaidOutTensor(y)]
    }

    /// The largest input map (height × width) `runBlockedChannels` takes.
    static let blockedMapLimit = 32 * 32

    /// The convolution's float32 weight when the register kernels can finish its epilogue: output
    /// channels a multiple of 16, no groups, a float32 bias per output channel or none, ReLU or no
    /// activation.
    private var registerWeight: Tensor? {
        guard conv.group == 1, let weight = conv.weight, weight.dtype == .float32, weight.rank == 4,
            weight.shape[0] % 16 == 0, conv.activation == nil || conv.activation == .relu,
            conv.bias.map({ $0.dtype == .float32 && $0.elementCount == weight.shape[0] }) ?? true
        else { return nil }
        return weight
    }

    /// The convolution's padding and the pooled map's size when the convolution (stride 1, no
    /// dilation, `kernel` [out, in, kh, kw]) is followed by a 2 × 2, stride-2 pool without padding,
    /// or nil when either geometry is another.
    func twoByTwoPooling(
        height: Int, width: Int, kernel: [Int]
    ) throws
        -> (pads: (top: Int, left: Int, bottom: Int, right: Int), pooled: [Int])?
    {
        var convGeometry = conv.geometry
        try convGeometry.complete(rank: 2)
        var poolGeometry = pool.plain.geometry
        try poolGeometry.complete(rank: 2)
        guard convGeometry.strides == [1, 1], convGeometry.dilations == [1, 1],
            convGeometry.kernel == Array(kernel[2...]), poolGeometry.kernel == [2, 2],
            poolGeometry.strides == [2, 2], poolGeometry.dilations == [1, 1], !poolGeometry.ceilMode,
            poolGeometry.autoPad == .notSet, poolGeometry.pads.allSatisfy({ $0 == 0 })
        else { return nil }
        let convolved = try convGeometry.resolve([height, width])
        let pooled = try poolGeometry.resolve(convolved.output)
        guard convolved.output.allSatisfy({ $0 >= 2 }), pooled.output == convolved.output.map({ $0 / 2 }) else {
            return nil
        }
        return ((convolved.begin[0], convolved.begin[1], convolved.end[0], convolved.end[1]), pooled.output)
    }

    /// Runs `kernel` on `batch` images cut into one slice per thread; false when any slice returned
    /// non-zero (a C kernel that declined or could not allocate).
    private static func forEachSlice(
        _ batch: Int, threads: Int, _ kernel: @Sendable (Range<Int>) -> Int32
    ) -> Bool {
        let failed = Locked(false)
        Parallel.forEach(batch, threads: threads) { images in
            if kernel(images) != 0 { failed.withLock { $0 = true } }
        }
        return !failed.withLock { $0 }
    }

    /// One input channel convolved and pooled 2 × 2 in one AVX-512 kernel (`lethe_single_channel_
    /// conv_pool`), written in 16-channel blocks: the first layer of a grey-scale network (the sample
    /// CNN's 1 → 16 channels on 28²), where oneDNN's direct kernel ran at a third of its usual speed and
    /// the pool reread the whole map (64 images: 0.32 → 0.07 ms on one thread). Nil when the shapes,
    /// the epilogue (`registerWeight`) or the pool (`twoByTwoPooling`) do not suit it.
    func runSingleChannel(_ inputs: [LaidOutTensor?], _ context: ExecutionContext) throws -> [LaidOutTensor]? {
        guard let input = inputs.first ?? nil, input.blocked == nil, input.tensor.dtype == .float32,
            input.tensor.rank == 4, input.tensor.shape[1] == 1, let weight = registerWeight, weight.shape[1] == 1
        else { return nil }
        let x = input.tensor
        let (batch, height, width) = (x.shape[0], x.shape[2], x.shape[3])
        guard batch > 0, let (pads, pooled) = try twoByTwoPooling(height: height, width: width, kernel: weight.shape)
        else { return nil }
        let outChannels = weight.shape[0]
        let layout = BlockedLayout(shape: [batch, outChannels] + pooled, block: 16)
        let y = try Tensor.uninitialized(.float32, [layout.elementCount])
        let relu: Int32 = conv.activation == .relu ? 1 : 0
        let (kh, kw) = (weight.shape[2], weight.shape[3])
        let pointers = UncheckedSendable((x.floats, weight.floats, conv.bias?.floats, y.mutableFloats))
        let done = Self.forEachSlice(batch, threads: context.threads) { images in
            let (source, taps, bias, target) = pointers.value
            return lethe_single_channel_conv_pool(
                source + images.lowerBound * height * width, images.count, height, width, taps, bias, outChannels,
                kh, kw, pads.top, pads.left, pads.bottom, pads.right, relu,
                target + images.lowerBound * layout.imageElements)
        }
        return done ? [LaidOutTensor(y, blocked: layout)] : nil
    }
}
