import CDNNL
import LetheCore

/// How a float32 activation is held when it is not plain NC…: oneDNN's channel-blocked layout
/// (nCw…c, nChw…c, nCdhw…c), `block` channels innermost, the channel count padded up to a whole
/// block with zeros; or, with `block` 0, channels-last (NWC, NHWC, NDHWC), no padding.
///
/// Convolutions and the kernels between them pass such tensors on, so the data is not reordered to
/// NC… and back at every convolution. The tensor itself is then a flat float32 buffer of
/// `elementCount` values; only kernels that say they take blocked inputs (`BlockedLayoutKernel`)
/// ever see one, the plan converts it to plain for every other reader.
struct BlockedLayout: Hashable, Sendable {
    /// The logical NC… shape.
    let shape: [Int]
    /// Channels per block (16 or 8), or 0 for channels-last.
    let block: Int

    var batch: Int { shape[0] }
    var channels: Int { shape[1] }
    var paddedChannels: Int { block == 0 ? channels : (channels + block - 1) / block * block }
    /// Floats of one image, padding included; images follow each other in the buffer.
    var imageElements: Int { paddedChannels * shape[2...].reduce(1, *) }
    var elementCount: Int { batch * imageElements }

    /// oneDNN's descriptor of `batch` images in this layout.
    func descriptor(batch: Int) throws -> dnnl_memory_desc_t {
        try dnnlDescriptor([batch] + shape[1...], Self.tag(rank: shape.count, block: block))
    }

    /// The channel-blocked tag (nCw…c, nChw…c, nCdhw…c) for 16 or 8 channels a block, the
    /// channels-last one (NWC, NHWC, NDHWC) for 0.
    static func tag(rank: Int, block: Int) -> dnnl_format_tag_t {
        switch (rank, block) {
        case (3, 0): return dnnl_acb
        case (4, 0): return dnnl_acdb
        case (5, 0): return dnnl_acdeb
        case (3, 16): return dnnl_aBc16b
        case (4, 16): return dnnl_aBcd16b
        case (5, 16): return dnnl_aBcde16b
        case (3, _): return dnnl_aBc8b
        case (4, _): return dnnl_aBcd8b
        default: return dnnl_aBcde8b
        }
    }

    /// The block of `descriptor` when it is exactly this layout's tag for its dims, else nil.
    static func block(of descriptor: dnnl_memory_desc_t) -> Int? {
        var descriptor = descriptor
        let rank = Int(descriptor.ndims)
        guard (3...5).contains(rank), descriptor.data_type == dnnl_f32 else { return nil }
        let dims = withUnsafeBytes(of: &descriptor.dims) { Array($0.bindMemory(to: dnnl_dim_t.self).prefix(rank)) }
        for block in [16, 8, 0] {
            guard var canonical = try? dnnlDescriptor(dims.map { Int($0) }, tag(rank: rank, block: block)) else {
                continue
            }
            if dnnl_memory_desc_equal(&canonical, &descriptor) != 0 { return block }
        }
        return nil
    }
}

/// A value as the plan holds it: a tensor and, when it is channel-blocked, its layout.
struct LaidOutTensor {
    var tensor: Tensor
    var blocked: BlockedLayout?

    init(_ tensor: Tensor, blocked: BlockedLayout? = nil) {
        self.tensor = tensor
        self.blocked = blocked
    }

    /// The logical shape (NC… for a blocked tensor).
    var shape: [Int] { blocked?.shape ?? tensor.shape }

    /// The plain NC… tensor, reordered from the blocked one when needed.
    func plain(threads: Int) throws -> Tensor {
        guard let blocked else { return tensor }
        return try BlockedReorder.toPlain(tensor, blocked, threads: threads)
    }
}

/// A kernel that can read channel-blocked inputs and write a channel-blocked output.
protocol BlockedLayoutKernel: Kernel {
    /// Whether input `index` may arrive blocked (plan time; the kernel still checks at run time).
    func acceptsBlocked(input index: Int) -> Bool
    /// Whether the kernel may ever write its first output blocked.
    var mayEmitBlocked: Bool { get }
    /// Runs on `inputs` as they are laid out. With `emitBlocked` false every output must be plain;
    /// with it true the first output may be blocked (every reader of it takes blocked inputs).
    func run(
        laidOut inputs: [LaidOutTensor?], emitBlocked: Bool, _ context: ExecutionContext
    ) throws
        -> [LaidOutTensor]
}

extension BlockedLayoutKernel {
    /// The plain entry point: plain inputs in, plain outputs out.
    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        try run(laidOut: inputs.map { $0.map { LaidOutTensor($0) } }, emitBlocked: false, context).map(\.tensor)
    }
}

/// Reorders between plain NC… and the blocked layout, batch slices on separate threads, with one
/// cached single-threaded oneDNN reorder per slice size.
enum BlockedReorder {
    private struct Key: Hashable {
        var layout: BlockedLayout
        var toPlain: Bool
    }
    private static let cache = Locked<[Key: DNNLPrimitive]>([:])
    private static let cacheLimit = 256

    static func toPlain(_ tensor: Tensor, _ layout: BlockedLayout, threads: Int) throws -> Tensor {
        precondition(tensor.elementCount == layout.elementCount, "blocked buffer of the wrong size")
        let plain = try Tensor.uninitialized(.float32, layout.shape)
        if layout.shape.count >= 3, layout.shape[2...].reduce(1, *) <= transposedMapLimit {
            transposeToPlain(layout, from: tensor.floats, to: plain.mutableFloats, threads: threads)
        } else {
            try run(layout, toPlain: true, from: tensor.floats, to: plain.mutableFloats, threads: threads)
        }
        return plain
    }

    /// Positions per map up to which blocked-to-plain goes by transposes: oneDNN's reorder is slow on
    /// the smallest maps (the sample CNN's last pool, 7 × 7) and faster from a few hundred positions
    /// (ResNet-18 at 224², whose statistics pass taps maps of 56² to 7²: all by transposes, 59.0 s;
    /// none, 58.0 s).
    static let transposedMapLimit = 8 * 8

    /// Blocked to plain as transposes: each block of an image is `spatial` rows of `block` channels
    /// (channels-last: of all of them), and its plain channels are those rows' columns. oneDNN's
    /// reorder moved the sample CNN's 64 × 32 × 7 × 7 output of its last pool at 4 GB/s, a tenth of
    /// that chunk's time on one thread.
    private static func transposeToPlain(
        _ layout: BlockedLayout, from: UnsafePointer<Float>, to: UnsafeMutablePointer<Float>, threads: Int
    ) {
        let spatial = layout.shape[2...].reduce(1, *), channels = layout.channels
        let width = layout.block == 0 ? channels : layout.block
        let blocks = (channels + width - 1) / width
        let plainImage = channels * spatial, blockedImage = layout.imageElements
        Parallel.forEach(layout.batch * blocks, threads: threads, grain: max(1, 4096 / max(1, spatial * width))) {
            range in
            for index in range {
                let image = index / blocks, block = index % blocks
                let first = block * width
                VectorMath.transpose(
                    from + image * blockedImage + first * spatial, stride: width, rows: spatial,
                    columns: min(width, channels - first), into: to + image * plainImage + first * spatial,
                    stride: spatial)
            }
        }
    }

    /// `tensor` (plain NC…, float32) in `block`-channel blocks, padding zeroed.
    static func toBlocked(_ tensor: Tensor, block: Int, threads: Int) throws -> LaidOutTensor {
        let layout = BlockedLayout(shape: tensor.shape, block: block)
        let blocked = try Tensor.uninitialized(.float32, [layout.elementCount])
        try run(layout, toPlain: false, from: tensor.floats, to: blocked.mutableFloats, threads: threads)
        return LaidOutTensor(blocked, blocked: layout)
    }

    private static func run(
        _ layout: BlockedLayout, toPlain: Bool, from: UnsafePointer<Float>, to: UnsafeMutablePointer<Float>,
        threads: Int
    ) throws {
        guard layout.elementCount > 0, let engine = DNNLEngine.shared else {
            if layout.elementCount == 0 { return }
            throw RuntimeError("oneDNN is unavailable for a blocked tensor")
        }
        let slices = BatchSlices(batch: layout.batch, threads: threads)
        let plainImage = layout.shape[1...].reduce(1, *), blockedImage = layout.imageElements
        let small = try primitive(layout, batch: slices.base, toPlain: toPlain, engine: engine)
        let large =
            slices.extra > 0 ? try primitive(layout, batch: slices.base + 1, toPlain: toPlain, engine: engine) : small
        let (fromImage, toImage) = toPlain ? (blockedImage, plainImage) : (plainImage, blockedImage)
        try slices.run("oneDNN reorder") { first, count, isLarge in
            let plainDescriptor = try dnnlDescriptor(
                [count] + layout.shape[1...], dnnlPlainTag(rank: layout.shape.count))
            let blockedDescriptor = try layout.descriptor(batch: count)
            let source = try DNNLMemory(
                toPlain ? blockedDescriptor : plainDescriptor,
                UnsafeMutableRawPointer(mutating: from + first * fromImage), engine: engine.handle)
            let target = try DNNLMemory(
                toPlain ? plainDescriptor : blockedDescriptor, to + first * toImage, engine: engine.handle)
            try (isLarge ? large : small).run(
                [
                    dnnl_exec_arg_t(arg: DNNL_ARG_FROM, memory: source.handle),
                    dnnl_exec_arg_t(arg: DNNL_ARG_TO, memory: target.handle)
                ],
                engine: engine.handle)
        }
    }

    private static func primitive(
        _ layout: BlockedLayout, batch: Int, toPlain: Bool, engine: DNNLEngine
    ) throws -> DNNLPrimitive {
        let sliceLayout = BlockedLayout(shape: [batch] + layout.shape[1...], block: layout.block)
        let key = Key(layout: sliceLayout, toPlain: toPlain)
        if let known = cache.withLock({ $0[key] }) { return known }
        LibraryThreads.useOpenMP(threads: 1)
        let plain = try dnnlDescriptor(sliceLayout.shape, dnnlPlainTag(rank: layout.shape.count))
        let blocked = try sliceLayout.descriptor(batch: batch)
        let reorder = try DNNLPrimitive.reorder(
            from: toPlain ? blocked : plain, to: toPlain ? plain : blocked, engine: engine.handle)
        guard reorder.scratchpadBytes == 0 else {
            throw RuntimeError("oneDNN's reorder of a blocked tensor asks for scratch memory")
        }
        cache.withLock { cache in
            if cache.count >= cacheLimit { cache.removeAll() }
            cache[key] = reorder
        }
        return reorder
    }
}
