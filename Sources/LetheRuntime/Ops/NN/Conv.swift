import LetheCore

/// The sizes of one convolution: 2-D, with 1-D ones run at a height of 1 and 3-D (NCDHW) ones adding a
/// depth axis (depth 1 otherwise). A "plane" is one channel's whole spatial extent.
struct ConvolutionShape {
    var batch = 0, channels = 0, depth = 1, height = 0, width = 0
    var outChannels = 0, group = 1
    var kd = 1, sd = 1, dd = 1, padFront = 0, outDepth = 1
    var kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1, padTop = 0, padLeft = 0
    var outHeight = 0, outWidth = 0
    var isVolumetric = false

    var channelsPerGroup: Int { channels / group }
    var outChannelsPerGroup: Int { outChannels / group }
    /// Window taps per channel.
    var taps: Int { kd * kh * kw }
    /// Rows of the patch matrix: one per weight element of a group's filter.
    var patchSize: Int { channelsPerGroup * taps }
    var outPlane: Int { outDepth * outHeight * outWidth }
    var inPlane: Int { depth * height * width }
    var isPointwise: Bool {
        kd == 1 && sd == 1 && padFront == 0 && outDepth == depth
            && kh == 1 && kw == 1 && sh == 1 && sw == 1 && padTop == 0 && padLeft == 0 && outHeight == height
            && outWidth == width
    }

    init() {}

    /// Reads NCDHW / NCHW / NCL sizes from `x` and `w` and resolves padding.
    init(x: [Int], w: [Int], group: Int, geometry: SpatialGeometry) throws {
        guard (3...5).contains(x.count), w.count == x.count else {
            throw RuntimeError("Conv supports 1-D, 2-D and 3-D inputs; got input \(x) and weight \(w)")
        }
        var geometry = geometry
        if geometry.kernel.isEmpty { geometry.kernel = Array(w[2...]) }
        try geometry.complete(rank: x.count - 2)
        let resolved = try geometry.resolve(Array(x[2...]))
        batch = x[0]; channels = x[1]; outChannels = w[0]; self.group = group
        guard group > 0, channels % group == 0, outChannels % group == 0, w[1] == channels / group else {
            throw RuntimeError("Conv input \(x), weight \(w) and group \(group) do not agree")
        }
        guard Array(w[2...]) == geometry.kernel else {
            throw RuntimeError("kernel_shape \(geometry.kernel) differs from weight \(w)")
        }
        if x.count == 5 {
            isVolumetric = true
            depth = x[2]; height = x[3]; width = x[4]
            kd = w[2]; kh = w[3]; kw = w[4]
            sd = geometry.strides[0]; sh = geometry.strides[1]; sw = geometry.strides[2]
            dd = geometry.dilations[0]; dh = geometry.dilations[1]; dw = geometry.dilations[2]
            padFront = resolved.begin[0]; padTop = resolved.begin[1]; padLeft = resolved.begin[2]
            outDepth = resolved.output[0]; outHeight = resolved.output[1]; outWidth = resolved.output[2]
        } else if x.count == 4 {
            height = x[2]; width = x[3]
            kh = w[2]; kw = w[3]
            sh = geometry.strides[0]; sw = geometry.strides[1]
            dh = geometry.dilations[0]; dw = geometry.dilations[1]
            padTop = resolved.begin[0]; padLeft = resolved.begin[1]
            outHeight = resolved.output[0]; outWidth = resolved.output[1]
        } else {
            height = 1; width = x[2]
            kw = w[2]; sw = geometry.strides[0]; dw = geometry.dilations[0]
            padLeft = resolved.begin[0]; outHeight = 1; outWidth = resolved.output[0]
        }
    }

    /// For small output maps and all 3-D ones: per kernel tap and output position, the input offset
    /// inside a channel plane, or -1 where the window reads padding. Lets im2col run as one flat gather
    /// per channel.
    func gatherTable() -> [Int32] {
        var table = [Int32](repeating: -1, count: taps * outPlane)
        for a in 0..<kd {
            for i in 0..<kh {
                for j in 0..<kw {
                    let tap = (a * kh + i) * kw + j
                    for z in 0..<outDepth {
                        let id = z * sd - padFront + a * dd
                        guard id >= 0, id < depth else { continue }
                        for y in 0..<outHeight {
                            let ih = y * sh - padTop + i * dh
                            guard ih >= 0, ih < height else { continue }
                            for x in 0..<outWidth {
                                let iw = x * sw - padLeft + j * dw
                                guard iw >= 0, iw < width else { continue }
                                table[tap * outPlane + (z * outHeight + y) * outWidth + x] = Int32(
                                    (id * height + ih) * width + iw)
                            }
                        }
                    }
                }
            }
        }
        return table
    }

    /// im2col through a `gatherTable()`: rows of channel `c` of one image.
    func im2col(
        _ x: UnsafePointer<Float>, _ col: UnsafeMutablePointer<Float>, ldc: Int, channel c: Int,
        table: UnsafePointer<Int32>
    ) {
        let plane = x + c * inPlane, taps = self.taps, p = outPlane
        for r in 0..<taps {
            let row = col + (c * taps + r) * ldc
            let offsets = table + r * p
            for k in 0..<p {
                let offset = Int(offsets[k])
                row[k] = offset >= 0 ? plane[offset] : 0
            }
        }
    }

    /// Copies the receptive fields of one image-group into `col` (patchSize rows of `ldc` floats,
    /// `outPlane` of them used), zero where the window hangs over the padding. 1-D and 2-D only.
    func im2col(_ x: UnsafePointer<Float>, _ col: UnsafeMutablePointer<Float>, ldc: Int, channels: Range<Int>? = nil) {
        let oh = outHeight, ow = outWidth
        // Small maps make many short rows: plain loops beat memmove/memset calls there.
        let short = ow < 16
        for c in channels ?? 0..<channelsPerGroup {
            let plane = x + c * inPlane
            for i in 0..<kh {
                for j in 0..<kw {
                    let row = col + ((c * kh + i) * kw + j) * ldc
                    let shift = j * dw - padLeft
                    // Output columns whose input column lies inside the image.
                    let low = shift >= 0 ? 0 : min(ow, (-shift + sw - 1) / sw)
                    let highNumerator = width - 1 - shift
                    let high = highNumerator < 0 ? 0 : min(ow, highNumerator / sw + 1)
                    for y in 0..<oh {
                        let line = row + y * ow
                        let ih = y * sh - padTop + i * dh
                        if ih < 0 || ih >= height || high <= low {
                            if short { for k in 0..<ow { line[k] = 0 } } else { line.update(repeating: 0, count: ow) }
                            continue
                        }
                        let source = plane + ih * width + shift
                        if short {
                            for k in 0..<low { line[k] = 0 }
                            for k in low..<high { line[k] = source[k * sw] }
                            for k in high..<ow { line[k] = 0 }
                            continue
                        }
                        if low > 0 { line.update(repeating: 0, count: low) }
                        if high < ow { (line + high).update(repeating: 0, count: ow - high) }
                        if sw == 1 {
                            (line + low).update(from: source + low, count: high - low)
                        } else {
                            for xo in low..<high { line[xo] = source[xo * sw] }
                        }
                    }
                }
            }
        }
    }
}

/// Conv through oneDNN's convolution primitives when the weights are constants (see
/// `DNNLConvolution`), else, and for sizes oneDNN refuses, via im2col and one GEMM per group, with
/// bias and a fused activation applied as each output row is finished. There small feature maps are
/// batched (several images' patches side by side) so the GEMM stays wide; batches of chunks run on
/// separate threads with single-threaded GEMMs.
struct ConvKernel: BlockedLayoutKernel {
    let geometry: SpatialGeometry
    let group: Int
    let weight: Tensor?
    let bias: Tensor?
    let activation: Activation?
    /// The oneDNN path, nil when the weights or bias are run-time inputs or `allowDNNL` was false.
    let dnnl: DNNLConvolution?
    /// The part of `activation` oneDNN does not fuse, applied to its output afterwards.
    let activationAfterDNNL: Activation?

    /// `allowDNNL: false` keeps every size on the im2col path (tests compare the two).
    init(_ request: KernelRequest, allowDNNL: Bool = true) throws {
        group = try request.int("group", 1)
        guard group >= 1 else { throw Unsupported("group \(group)") }
        let constantWeight = request.constant(1)?.asFloat32()
        if let w = constantWeight, !(3...5).contains(w.rank) {
            throw Unsupported("\(w.rank - 2)-D convolution (1-D to 3-D are supported)")
        }
        geometry = try SpatialGeometry(request, kernel: constantWeight.map { Array($0.shape[2...]) })
        if geometry.kernel.count > 3 {
            throw Unsupported("\(geometry.kernel.count)-D convolution (1-D to 3-D are supported)")
        }
        weight = constantWeight
        bias = request.constant(2)?.asFloat32()
        activation = request.activation
        // Empty when there is no activation, nil when oneDNN cannot compute it exactly.
        let fused = activation.map { $0.dnnlPostOps } ?? []
        if allowDNNL, let weight, !request.hasInput(2) || bias != nil {
            dnnl = DNNLConvolution(
                weight: weight, bias: bias, group: group, postOps: fused ?? [], channelsLast: request.channelsLast)
        } else {
            dnnl = nil
        }
        activationAfterDNNL = fused == nil ? activation : nil
    }

    /// Runs on a plain or channel-blocked `x`; with `emitBlocked`, the oneDNN path leaves its output
    /// in the convolution's own blocked layout when it has one.
    func run(
        laidOut inputs: [LaidOutTensor?], emitBlocked: Bool, _ context: ExecutionContext
    ) throws
        -> [LaidOutTensor]
    {
        guard let input = inputs.first ?? nil else { throw RuntimeError("required input 0 is missing") }
        var laidOut = input
        _ = try requireFloat(laidOut.tensor)
        let w = try weight ?? inputs.map { $0?.tensor }.required(1).asFloat32()
        let b = bias ?? inputs.map { $0?.tensor }.optional(2)?.asFloat32()
        let conv = try ConvolutionShape(x: laidOut.shape, w: w.shape, group: group, geometry: geometry)
        if let b, b.elementCount != conv.outChannels {
            throw RuntimeError("Conv bias has \(b.elementCount) values for \(conv.outChannels) output channels")
        }
        var outShape = [conv.batch, conv.outChannels, conv.outDepth, conv.outHeight, conv.outWidth]
        let rank = laidOut.shape.count
        outShape.removeSubrange(2..<(7 - rank))
        // The gather table holds plane offsets as Int32.
        guard conv.inPlane < Int(Int32.max) else {
            throw RuntimeError("Conv input plane \(laidOut.shape) is too large")
        }
        if Tensor.elementCount(outShape) == 0 { return [LaidOutTensor(try Tensor.uninitialized(.float32, outShape))] }
        // The patch matrix (and the gather table, a fraction of it) is scratch memory the size of one
        // image-group's im2col: refuse it like a tensor when it exceeds the memory limit.
        _ = try Tensor.checkedByteCount(.float32, [conv.patchSize, conv.outPlane])
        if let dnnl, let slicing = try dnnl.slicing(conv, rank: rank - 2, threads: context.threads) {
            // A blocked input in another layout than the primitives read goes through plain NC….
            if let blocked = laidOut.blocked, blocked.block != slicing.sourceBlock {
                laidOut = LaidOutTensor(try laidOut.plain(threads: context.threads))
            }
            // An activation oneDNN does not fuse would run over the blocked padding too (and make it
            // nonzero), so such outputs stay plain.
            let layout =
                emitBlocked && activationAfterDNNL == nil
                ? slicing.destinationBlock.map { BlockedLayout(shape: outShape, block: $0) } : nil
            let y = try Tensor.uninitialized(.float32, layout.map { [$0.elementCount] } ?? outShape)
            try dnnl.run(
                slicing, conv, x: laidOut.tensor.floats, sourceBlocked: laidOut.blocked != nil, y: y.mutableFloats,
                destinationBlocked: layout != nil)
            if layout == nil { activationAfterDNNL?.apply(y.mutableFloats, y.elementCount, threads: context.threads) }
            return [LaidOutTensor(y, blocked: layout)]
        }
        let x = try laidOut.plain(threads: context.threads)
        let y = try Tensor.uninitialized(.float32, outShape)
        if conv.channelsPerGroup == 1 && conv.outChannelsPerGroup == 1 {
            depthwise(conv, x.floats, w.floats, b?.floats, y.mutableFloats, context.threads)
        } else {
            gemmConvolution(conv, x.floats, w.floats, b?.floats, y.mutableFloats, context.threads)
        }
        return [LaidOutTensor(y)]
    }

    func acceptsBlocked(input index: Int) -> Bool { index == 0 && dnnl != nil }
    var mayEmitBlocked: Bool { dnnl != nil && activationAfterDNNL == nil }

    private func gemmConvolution(
        _ conv: ConvolutionShape, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
        _ b: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>, _ threads: Int
    ) {
        let plane = conv.outPlane, k = conv.patchSize, mg = conv.outChannelsPerGroup
        // Enough images per GEMM to give it about 256 columns.
        let perChunk = max(1, min(conv.batch, 256 / max(1, plane)))
        let chunks = (conv.batch + perChunk - 1) / perChunk
        let parallelChunks = threads > 1 && chunks >= threads
        let gemmThreads = parallelChunks ? 1 : threads
        let pointwise = conv.isPointwise
        let activation = self.activation

        // Threads left over for the work inside one chunk when chunks run one after another.
        let innerThreads = parallelChunks ? 1 : threads
        let table = (conv.outWidth < 16 || conv.isVolumetric) && !pointwise ? conv.gatherTable() : []
        table.withUnsafeBufferPointer { tableBuffer in
            let table = tableBuffer.isEmpty ? nil : tableBuffer.baseAddress
            Parallel.forEach(chunks, threads: parallelChunks ? threads : 1) { range in
                let columns = perChunk * plane
                let col = pointwise && perChunk == 1 ? nil : UnsafeMutablePointer<Float>.allocate(capacity: k * columns)
                let staging = perChunk == 1 ? nil : UnsafeMutablePointer<Float>.allocate(capacity: mg * columns)
                defer { col?.deallocate(); staging?.deallocate() }
                for chunk in range {
                    let first = chunk * perChunk
                    let count = min(perChunk, conv.batch - first)
                    let width = count * plane
                    for g in 0..<conv.group {
                        let weights = w + g * mg * k
                        let patches: UnsafePointer<Float>
                        if let col {
                            let channelsPerGroup = conv.channelsPerGroup
                            Parallel.forEach(count * channelsPerGroup, threads: innerThreads, grain: 8) { items in
                                for item in items {
                                    let image = item / channelsPerGroup, channel = item % channelsPerGroup
                                    let source =
                                        x + ((first + image) * conv.channels + g * channelsPerGroup) * conv.inPlane
                                    if pointwise {
                                        (col + channel * width + image * plane).update(
                                            from: source + channel * conv.inPlane, count: plane)
                                    } else if let table {
                                        conv.im2col(
                                            source, col + image * plane, ldc: width, channel: channel, table: table)
                                    } else {
                                        conv.im2col(
                                            source, col + image * plane, ldc: width, channels: channel..<(channel + 1))
                                    }
                                }
                            }
                            patches = UnsafePointer(col)
                        } else {
                            patches = x + (first * conv.channels + g * conv.channelsPerGroup) * conv.inPlane
                        }
                        let target = staging ?? (y + (first * conv.outChannels + g * mg) * plane)
                        MatrixMultiply.multiply(
                            transposeA: false, transposeB: false, m: mg, n: width, k: k,
                            a: weights, lda: k, b: patches, ldb: width,
                            beta: 0, c: target, ldc: width, threads: gemmThreads)
                        // Scatter (when batched) and finish each output row: bias, activation.
                        Parallel.forEach(count * mg, threads: innerThreads, grain: max(1, 8192 / max(1, plane))) {
                            rows in
                            for item in rows {
                                let image = item / mg, m = item % mg
                                let channel = g * mg + m
                                let row = y + ((first + image) * conv.outChannels + channel) * plane
                                if let staging { row.update(from: staging + m * width + image * plane, count: plane) }
                                if let b {
                                    let value = b[channel]
                                    for i in 0..<plane { row[i] += value }
                                }
                                activation?.apply(row, plane)
                            }
                        }
                    }
                }
            }
        }
    }

    /// One filter per channel: a direct loop beats a GEMM with a single output row.
    private func depthwise(
        _ conv: ConvolutionShape, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
        _ b: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>, _ threads: Int
    ) {
        let planes = conv.batch * conv.outChannels
        let activation = self.activation
        Parallel.forEach(planes, threads: threads, grain: max(1, 4096 / max(1, conv.outPlane))) { range in
            for index in range {
                let channel = index % conv.outChannels, image = index / conv.outChannels
                let input = x + (image * conv.channels + channel) * conv.inPlane
                let output = y + index * conv.outPlane
                output.update(repeating: b?[channel] ?? 0, count: conv.outPlane)
                let filter = w + channel * conv.taps
                for a in 0..<conv.kd {
                    for i in 0..<conv.kh {
                        for j in 0..<conv.kw {
                            let weight = filter[(a * conv.kh + i) * conv.kw + j]
                            let shift = j * conv.dw - conv.padLeft
                            let low = shift >= 0 ? 0 : min(conv.outWidth, (-shift + conv.sw - 1) / conv.sw)
                            let highNumerator = conv.width - 1 - shift
                            let high = highNumerator < 0 ? 0 : min(conv.outWidth, highNumerator / conv.sw + 1)
                            if high <= low { continue }
                            for oz in 0..<conv.outDepth {
                                let id = oz * conv.sd - conv.padFront + a * conv.dd
                                if id < 0 || id >= conv.depth { continue }
                                for oy in 0..<conv.outHeight {
                                    let ih = oy * conv.sh - conv.padTop + i * conv.dh
                                    if ih < 0 || ih >= conv.height { continue }
                                    let line = output + (oz * conv.outHeight + oy) * conv.outWidth
                                    let source = input + (id * conv.height + ih) * conv.width + shift
                                    if conv.sw == 1 {
                                        for ox in low..<high { line[ox] += weight * source[ox] }
                                    } else {
                                        for ox in low..<high { line[ox] += weight * source[ox * conv.sw] }
                                    }
                                }
                            }
                        }
                    }
                }
                activation?.apply(output, conv.outPlane)
            }
        }
    }
}
