import CDNNL
import CVectorMath
import LetheCore

/// A linear layer with constant weights through oneDNN's matmul primitive:
/// `Y = activation(X · W + bias)` for row-major `X` of `rows × K` and `W` of `K × N`.
///
/// `dnnl_sgemm` repacks `W` into its kernel's panel layout on every call; on the sample CNN's
/// 1568 → 128 layer (transposed weights, 32 rows a thread, weights out of cache after the
/// convolutions) that repacking cost as much as the product. Here `W` is reordered once, on the
/// first run, into the blocked layout the primitive asks for (the same for every row count), and
/// bias and activation run as post-ops while the output is in registers. The rows are cut into one
/// slice per thread (`BatchSlices`), each run by a single-threaded primitive made for its row count
/// and cached. Safe to share between concurrent sessions: the cache is locked, primitives are
/// stateless once made and every run brings its own stream and scratch memory.
///
/// In bfloat16 (`ProductPrecision`), `W` is kept converted and each slice's rows are converted
/// `bfloat16Block` at a time into a small staging buffer just before the primitive reads them, so
/// the converted rows are still in cache and no bfloat16 copy of the whole input is made.
final class DNNLMatMul: Sendable {
    /// One row count's primitive and the memory descriptors it runs on.
    private final class Prepared: @unchecked Sendable {
        let matmul: DNNLPrimitive
        let source: dnnl_memory_desc_t, destination: dnnl_memory_desc_t
        let weightsLayout: dnnl_memory_desc_t
        let weights: DNNLBuffer

        init(
            matmul: DNNLPrimitive, source: dnnl_memory_desc_t, destination: dnnl_memory_desc_t,
            weightsLayout: dnnl_memory_desc_t, weights: DNNLBuffer
        ) {
            self.matmul = matmul
            self.source = source
            self.destination = destination
            self.weightsLayout = weightsLayout
            self.weights = weights
        }
    }

    private enum Entry {
        case ready(Prepared)
        case refused
    }

    private struct State {
        var entries: [Int: Entry] = [:]
        /// The weights reordered into each layout a primitive asked for (so far always one).
        var weights: [(layout: dnnl_memory_desc_t, buffer: DNNLBuffer)] = []
    }

    /// Row counts a slice comes in are few (a full chunk's and the last chunk's), but a caller
    /// feeding every batch size would otherwise keep a primitive for each forever.
    private static let entryLimit = 16
    private let engine: DNNLEngine
    private let weight: Tensor
    private let transposed: Bool
    private let scale: Float
    private let bias: DNNLBuffer?
    private let postOps: [DNNLConvolution.PostOp]
    /// The part of the activation oneDNN does not compute exactly, applied to each slice after it.
    private let activationAfter: Activation?
    private let state = Locked(State())
    /// Whether the operands are rounded to bfloat16 (only where the CPU multiplies in it natively).
    let bfloat16: Bool
    /// `K`, the length of an input row.
    let inner: Int
    /// `N`, the length of an output row.
    let outer: Int

    /// Nil when there is no oneDNN engine or the operands do not fit. `weight` is float32 `K × N`,
    /// or `N × K` when `transposed`; the product is scaled by `scale`; `bias` (float32, `N` values)
    /// is added after it. `precision` is the operands' format; `.bfloat16` runs as `.float32` on a CPU
    /// without native bfloat16 products.
    init?(
        weight: Tensor, transposed: Bool, scale: Float = 1, bias: Tensor?, activation: Activation?,
        precision: ProductPrecision = .float32
    ) {
        guard let engine = DNNLEngine.shared, weight.dtype == .float32, weight.rank == 2 else { return nil }
        let inner = transposed ? weight.shape[1] : weight.shape[0]
        let outer = transposed ? weight.shape[0] : weight.shape[1]
        guard inner > 0, outer > 0, bias.map({ $0.dtype == .float32 && $0.elementCount == outer }) ?? true else {
            return nil
        }
        self.inner = inner
        self.outer = outer
        bfloat16 = precision.effective == .bfloat16
        self.engine = engine
        self.weight = weight
        self.transposed = transposed
        self.scale = scale
        self.bias = bias.map { bias in
            let buffer = DNNLBuffer(byteCount: bias.elementCount * MemoryLayout<Float>.stride)
            buffer.pointer.copyMemory(from: bias.floats, byteCount: buffer.byteCount)
            return buffer
        }
        let fused = activation.map { $0.dnnlPostOps } ?? []
        postOps = fused ?? []
        activationAfter = fused == nil ? activation : nil
    }

    /// Whether `rows` rows are worth a primitive rather than `MatrixMultiply`: below 2^16
    /// multiply-adds the ≈ 1 µs a call spends on its stream and memory objects exceeds what prepacked
    /// weights save (OpenBLAS takes 0.2 µs for one row of 64 → 10, 1.2 µs for 64 rows).
    static func pays(rows: Int, _ matmul: DNNLMatMul) -> Bool {
        rows * matmul.inner * matmul.outer >= 1 << 16
    }

    /// Multiply-adds below which a slice is not worth handing to another thread.
    private static let sliceWork = 1 << 18

    /// `rows` cut into one slice per thread, fewer when a slice would get under `sliceWork`.
    private func slicing(rows: Int, threads: Int) -> BatchSlices {
        BatchSlices(batch: rows, threads: min(threads, max(1, rows * inner * outer / Self.sliceWork)))
    }

    /// Computes `rows` output rows into `y` from `x`, the rows split over `threads`. Returns false,
    /// having written nothing, when oneDNN has no optimized kernel for these sizes.
    func run(rows: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, threads: Int) throws -> Bool {
        guard rows > 0 else { return true }
        if bfloat16 { return try runConverting(rows: rows, x: x, y: y, threads: threads) }
        let slices = slicing(rows: rows, threads: threads)
        guard case .ready(let small) = try prepared(rows: slices.base) else { return false }
        var larger = small
        if slices.extra > 0 {
            guard case .ready(let prepared) = try prepared(rows: slices.base + 1) else { return false }
            larger = prepared
        }
        // Every slice's stream and memory objects are made here on the calling thread, so the slice
        // threads allocate nothing: small allocations on the worker threads, made and freed every
        // call, left the main heap growing by up to 100 MB over a 200-batch run of the sample CNN
        // (glibc keeps up to 128 MiB of freed heap, `HeapPolicy`).
        let calls = try (0..<slices.count).map { slice in
            let first = slices.first(of: slice)
            let large = slice < slices.extra
            return try Call(
                self, large ? larger : small, x + first * inner, y + first * outer,
                rows: large ? slices.base + 1 : slices.base)
        }
        if calls.count == 1 {
            LibraryThreads.useOpenMP(threads: 1)
            try calls[0].execute()
            return true
        }
        try slices.run("oneDNN matmul") { first, _, _ in try calls[slices.slice(startingAt: first)].execute() }
        return true
    }

    /// Rows converted to bfloat16 at a time: 256 rows of ViT-B/16's 3,072-wide layer are 1.5 MB, and
    /// oneDNN's bfloat16 kernel runs as fast on 256 rows as on 6,304 (≈ 500 GFLOP/s a core either way).
    static let bfloat16Block = 256

    /// `run` in bfloat16: each thread's slice in blocks of `bfloat16Block` rows, each converted into
    /// the slice's staging buffer, then multiplied into its rows of `y`.
    private func runConverting(
        rows: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, threads: Int
    ) throws -> Bool {
        let slices = slicing(rows: rows, threads: threads)
        let block = Self.bfloat16Block
        // Per slice, a call for whole blocks and one for the rows left over, both reading the slice's
        // staging buffer; made here on the calling thread, as in `run`.
        var calls: [(blocks: Call?, rest: Call?)] = []
        for slice in 0..<slices.count {
            let count = slice < slices.extra ? slices.base + 1 : slices.base
            let staging = DNNLBuffer(byteCount: min(block, count) * inner * MemoryLayout<UInt16>.stride)
            // nil when oneDNN refuses the size; `.some(nil)` when the slice has no such rows.
            func call(_ rows: Int) throws -> Call?? {
                guard rows > 0 else { return .some(nil) }
                guard case .ready(let prepared) = try prepared(rows: rows) else { return nil }
                return try Call(self, prepared, staging.pointer, y, rows: rows, staging: staging)
            }
            guard let blocks = try call(count >= block ? block : 0), let rest = try call(count % block) else {
                return false
            }
            calls.append((blocks, rest))
        }
        let inner = self.inner, outer = self.outer
        try slices.run("oneDNN matmul") { first, count, _ in
            let (blocks, rest) = calls[slices.slice(startingAt: first)]
            for row in stride(from: first, to: first + count, by: block) {
                let rows = min(block, first + count - row)
                guard let call = rows == block ? blocks : rest, let staging = call.staging else {
                    throw RuntimeError("bfloat16 matmul: no primitive made for \(rows) rows")
                }
                lethe_bfloat16_from_float(
                    x + row * inner, staging.pointer.assumingMemoryBound(to: UInt16.self), rows * inner)
                try call.execute(into: y + row * outer)
            }
        }
        return true
    }

    /// The name of the oneDNN kernel for slices of `rows` rows, nil when refused (for tests and logs).
    func implementation(rows: Int) throws -> String? {
        guard case .ready(let prepared) = try prepared(rows: rows) else { return nil }
        return prepared.matmul.implementation
    }

    private func prepared(rows: Int) throws -> Entry {
        try state.withLock { state throws(RuntimeError) -> Entry in
            if let entry = state.entries[rows] { return entry }
            let entry = try dnnlCreating("oneDNN matmul") {
                try make(rows: rows, state: &state).map(Entry.ready) ?? .refused
            }
            state.entries.insert(cached: entry, forKey: rows, limit: Self.entryLimit)
            return entry
        }
    }

    /// The primitive for slices of `rows` rows, or nil when oneDNN offers only its reference kernel.
    private func make(rows: Int, state: inout State) throws -> Prepared? {
        let operands = bfloat16 ? dnnl_bf16 : dnnl_f32
        var source = try dnnlDescriptor([rows, inner], dnnl_ab, operands)
        var weights = try dnnlDescriptor([inner, outer], dnnl_format_tag_any, operands)
        var destination = try dnnlDescriptor([rows, outer], dnnl_ab)
        var biasLayout = try dnnlDescriptor([1, outer], dnnl_ab)
        var operation = dnnl_matmul_desc_t()
        let hasBias = bias != nil
        let described = withUnsafePointer(to: &biasLayout) { biasPointer in
            dnnl_matmul_desc_init(&operation, &source, &weights, hasBias ? biasPointer : nil, &destination)
        }
        guard described == dnnl_success else { return nil }
        let attributes = try DNNLAttributes(postOps: postOps)
        var created: dnnl_primitive_desc_t?
        guard
            dnnl_primitive_desc_create(&created, &operation, attributes.handle, engine.handle, nil) == dnnl_success,
            let descriptor = created
        else { return nil }
        defer { dnnl_primitive_desc_destroy(descriptor) }
        let matmul = try DNNLPrimitive(descriptor, "matmul")
        // The reference kernel loops naively, far slower than the GEMM path the caller falls back to.
        guard !matmul.implementation.hasPrefix("ref") else { return nil }
        // Without native bfloat16 products oneDNN converts back to float32 inside: slower than float32.
        if bfloat16, !["bf16", "amx"].contains(where: matmul.implementation.contains) { return nil }
        let chosenWeights = dnnl_primitive_desc_query_md(descriptor, dnnl_query_weights_md, 0).pointee
        return Prepared(
            matmul: matmul, source: source, destination: destination, weightsLayout: chosenWeights,
            weights: try reorderedWeights(chosenWeights, state: &state))
    }

    /// The weights (scaled) in `layout`, reordered the first time a primitive asks for that layout.
    private func reorderedWeights(_ layout: dnnl_memory_desc_t, state: inout State) throws -> DNNLBuffer {
        if let known = state.weights.first(where: { dnnlSame($0.layout, layout) }) { return known.buffer }
        // `W` as `K × N` dims: row-major, or column-major (`ba`) when stored transposed.
        let plain = try dnnlDescriptor([inner, outer], transposed ? dnnl_ba : dnnl_ab)
        let buffer: DNNLBuffer
        if scale == 1 {
            buffer = try DNNLBuffer.reordered(weight.floats, from: plain, to: layout, engine: engine.handle)
        } else {
            // Folding alpha into the weights rounds once more than scaling the product, well within
            // float32 agreement; the scaled copy lives only for the reorder.
            let count = weight.elementCount
            let scaled = UnsafeMutablePointer<Float>.allocate(capacity: count)
            defer { scaled.deallocate() }
            for i in 0..<count { scaled[i] = scale * weight.floats[i] }
            buffer = try DNNLBuffer.reordered(scaled, from: plain, to: layout, engine: engine.handle)
        }
        state.weights.append((layout, buffer))
        return buffer
    }

    /// One slice's run: the primitive and the memory objects over its rows.
    private final class Call: @unchecked Sendable {
        let prepared: Prepared
        let activationAfter: Activation?
        let y: UnsafeMutablePointer<Float>
        let count: Int
        let scratch: DNNLBuffer
        /// The bfloat16 rows the source memory reads (kept alive with the call), nil in float32.
        let staging: DNNLBuffer?
        let stream: DNNLStream
        let memories: [DNNLMemory]
        let arguments: [dnnl_exec_arg_t]

        init(
            _ owner: DNNLMatMul, _ prepared: Prepared, _ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>,
            rows: Int, staging: DNNLBuffer? = nil
        ) throws {
            let handle = owner.engine.handle
            self.prepared = prepared
            activationAfter = owner.activationAfter
            self.y = y
            self.staging = staging
            count = rows * owner.outer
            // A few hundred bytes: allocated here rather than taken from the convolutions' pool, whose
            // smallest free buffer may be megabytes that a convolution then has to allocate again.
            scratch = DNNLBuffer(byteCount: prepared.matmul.scratchpadBytes)
            stream = try DNNLStream(engine: handle)
            let source = try DNNLMemory(prepared.source, UnsafeMutableRawPointer(mutating: x), engine: handle)
            let destination = try DNNLMemory(prepared.destination, y, engine: handle)
            let weights = try DNNLMemory(prepared.weightsLayout, prepared.weights.pointer, engine: handle)
            var memories = [source, destination, weights]
            var arguments = [
                dnnl_exec_arg_t(arg: DNNL_ARG_SRC, memory: source.handle),
                dnnl_exec_arg_t(arg: DNNL_ARG_WEIGHTS, memory: weights.handle),
                dnnl_exec_arg_t(arg: DNNL_ARG_DST, memory: destination.handle)
            ]
            if let bias = owner.bias {
                let memory = try DNNLMemory(dnnlDescriptor([1, owner.outer], dnnl_ab), bias.pointer, engine: handle)
                memories.append(memory)
                arguments.append(dnnl_exec_arg_t(arg: DNNL_ARG_BIAS, memory: memory.handle))
            }
            if let scratchpad = try DNNLMemory.scratchpad(
                scratch.pointer, bytes: prepared.matmul.scratchpadBytes, engine: handle)
            {
                memories.append(scratchpad)
                arguments.append(dnnl_exec_arg_t(arg: DNNL_ARG_SCRATCHPAD, memory: scratchpad.handle))
            }
            self.memories = memories
            self.arguments = arguments
        }

        /// The product with bias and fused post-ops, then any activation oneDNN left over; written at
        /// `target` instead of the call's own output when given (a bfloat16 slice's next block).
        func execute(into target: UnsafeMutablePointer<Float>? = nil) throws {
            if let target { try memories[1].setData(target) }
            try arguments.withUnsafeBufferPointer { arguments in
                try dnnlCheck(
                    dnnl_primitive_execute(
                        prepared.matmul.handle, stream.handle, Int32(arguments.count), arguments.baseAddress),
                    "executing \(prepared.matmul.implementation)")
            }
            try stream.wait()
            activationAfter?.apply(target ?? y, count)
        }
    }
}
