import CDNNL
import LetheCore

/// One MaxPool node's oneDNN max pooling over channel-blocked tensors (2-D and 3-D windows, no
/// dilation), so a pool between two convolutions does not send its input through plain NC….
///
/// As with convolutions, the batch is cut into one slice per thread, each run by a single-threaded
/// primitive cached per slice shape; shapes oneDNN serves only with its reference kernel are refused
/// and the caller pools plain NC… instead.
final class DNNLMaxPooling: Sendable {
    private struct Key: Hashable {
        var layout: BlockedLayout
        var output: [Int]
    }

    private static let entryLimit = 64
    private let kernel: [Int], strides: [Int]
    private let cache = Locked<[Key: DNNLPrimitive?]>([:])

    /// Nil when there is no oneDNN engine or the window is dilated.
    init?(kernel: [Int], strides: [Int], dilations: [Int]) {
        guard DNNLEngine.shared != nil, dilations.allSatisfy({ $0 == 1 }), strides.count == kernel.count else {
            return nil
        }
        self.kernel = kernel
        self.strides = strides
    }

    /// Pools blocked `x` (`layout`) into `y`, in the same block size, of spatial size `output` with
    /// `padBegin` (ONNX's begin pads; the end pads follow from the output size). Returns false,
    /// having written nothing, when oneDNN refuses these sizes.
    func run(
        _ x: UnsafePointer<Float>, _ layout: BlockedLayout, padBegin: [Int], output: [Int],
        y: UnsafeMutablePointer<Float>, threads: Int
    ) throws -> Bool {
        guard let engine = DNNLEngine.shared, layout.shape.count == kernel.count + 2 else { return false }
        let outputLayout = BlockedLayout(shape: Array(layout.shape[..<2]) + output, block: layout.block)
        let slices = BatchSlices(batch: layout.batch, threads: threads)
        guard let small = try primitive(layout, batch: slices.base, padBegin: padBegin, output: output, engine: engine)
        else { return false }
        var large = small
        if slices.extra > 0 {
            guard
                let primitive = try primitive(
                    layout, batch: slices.base + 1, padBegin: padBegin, output: output, engine: engine)
            else { return false }
            large = primitive
        }
        try slices.run("oneDNN pooling") { first, count, isLarge in
            let source = try DNNLMemory(
                layout.descriptor(batch: count),
                UnsafeMutableRawPointer(mutating: x + first * layout.imageElements),
                engine: engine.handle)
            let target = try DNNLMemory(
                outputLayout.descriptor(batch: count), y + first * outputLayout.imageElements,
                engine: engine.handle)
            try (isLarge ? large : small).run(
                [
                    dnnl_exec_arg_t(arg: DNNL_ARG_SRC, memory: source.handle),
                    dnnl_exec_arg_t(arg: DNNL_ARG_DST, memory: target.handle)
                ],
                engine: engine.handle)
        }
        return true
    }

    /// Whether `run` takes these sizes (oneDNN has an optimized kernel for them).
    func accepts(_ layout: BlockedLayout, padBegin: [Int], output: [Int]) throws -> Bool {
        guard let engine = DNNLEngine.shared, layout.shape.count == kernel.count + 2 else { return false }
        return try primitive(layout, batch: layout.batch, padBegin: padBegin, output: output, engine: engine) != nil
    }

    /// The pooling primitive for `batch` images, or nil when oneDNN has only its reference kernel.
    private func primitive(
        _ layout: BlockedLayout, batch: Int, padBegin: [Int], output: [Int], engine: DNNLEngine
    ) throws -> DNNLPrimitive? {
        let slice = BlockedLayout(shape: [batch] + layout.shape[1...], block: layout.block)
        let key = Key(layout: slice, output: padBegin + output)
        if let known = cache.withLock({ $0[key] }) { return known }
        LibraryThreads.useOpenMP(threads: 1)
        let made = try make(slice, padBegin: padBegin, output: output, engine: engine)
        cache.withLock { $0.insert(cached: made, forKey: key, limit: Self.entryLimit) }
        return made
    }

    private func make(
        _ layout: BlockedLayout, padBegin: [Int], output: [Int], engine: DNNLEngine
    ) throws -> DNNLPrimitive? {
        let input = Array(layout.shape[2...])
        // The smallest end pad that reproduces ONNX's output size (ceil_mode included); every window
        // must still start inside the input, or oneDNN and ONNX would disagree on an empty window.
        var padEnd: [Int] = []
        for axis in input.indices {
            let end = max(0, (output[axis] - 1) * strides[axis] + kernel[axis] - input[axis] - padBegin[axis])
            guard padBegin[axis] >= 0, padBegin[axis] < kernel[axis], end < kernel[axis],
                (output[axis] - 1) * strides[axis] - padBegin[axis] < input[axis],
                (input[axis] + padBegin[axis] + end - kernel[axis]) / strides[axis] + 1 == output[axis]
            else { return nil }
            padEnd.append(end)
        }
        var source = try layout.descriptor(batch: layout.batch)
        var destination = try BlockedLayout(shape: Array(layout.shape[..<2]) + output, block: layout.block)
            .descriptor(batch: layout.batch)
        var operation = dnnl_pooling_desc_t()
        let described = dnnl_pooling_forward_desc_init(
            &operation, dnnl_forward_inference, dnnl_pooling_max, &source, &destination,
            strides.map { dnnl_dim_t($0) }, kernel.map { dnnl_dim_t($0) }, padBegin.map { dnnl_dim_t($0) },
            padEnd.map { dnnl_dim_t($0) })
        guard described == dnnl_success else { return nil }
        let attributes = try DNNLAttributes()
        var descriptor: dnnl_primitive_desc_t?
        guard
            dnnl_primitive_desc_create(&descriptor, &operation, attributes.handle, engine.handle, nil) == dnnl_success,
            let descriptor
        else { return nil }
        defer { dnnl_primitive_desc_destroy(descriptor) }
        let primitive = try DNNLPrimitive(descriptor, "pooling")
        guard !primitive.implementation.hasPrefix("ref"), primitive.scratchpadBytes == 0 else { return nil }
        return primitive
    }
}
