import CDNNL
import LetheCore
import Synchronization

/// oneDNN's CPU engine, made once per process; every primitive and memory object lives on it.
/// oneDNN engines are immutable once created and safe to share between threads.
final class DNNLEngine: @unchecked Sendable {
    let handle: dnnl_engine_t

    /// Nil when oneDNN cannot make a CPU engine; convolutions then stay on the im2col path.
    static let shared: DNNLEngine? = {
        // Thread settings first: oneDNN reads its environment when it first runs.
        LibraryThreads.useOpenMP(threads: 1)
        var engine: dnnl_engine_t?
        guard dnnl_engine_create(&engine, dnnl_cpu, 0) == dnnl_success, let engine else { return nil }
        return DNNLEngine(engine)
    }()

    private init(_ handle: dnnl_engine_t) { self.handle = handle }
}

/// Throws a `RuntimeError` naming the oneDNN call unless it succeeded.
func dnnlCheck(_ status: dnnl_status_t, _ operation: @autoclosure () -> String) throws {
    guard status != dnnl_success else { return }
    let names: [UInt32: String] = [
        dnnl_out_of_memory.rawValue: "out of memory", dnnl_invalid_arguments.rawValue: "invalid arguments",
        dnnl_unimplemented.rawValue: "unimplemented", dnnl_runtime_error.rawValue: "runtime error"
    ]
    let name = names[UInt32(status.rawValue)] ?? "status \(status.rawValue)"
    throw RuntimeError("oneDNN \(operation()) failed: \(name)")
}

/// A plain (row-major, dense) or `any` memory descriptor, of float32 unless `type` says otherwise.
func dnnlDescriptor(
    _ dims: [Int], _ tag: dnnl_format_tag_t, _ type: dnnl_data_type_t = dnnl_f32
) throws -> dnnl_memory_desc_t {
    var descriptor = dnnl_memory_desc_t()
    let dims = dims.map { dnnl_dim_t($0) }
    try dnnlCheck(
        dnnl_memory_desc_init_by_tag(&descriptor, Int32(dims.count), dims, type, tag),
        "memory descriptor \(dims)")
    return descriptor
}

/// The dense row-major tag of a float tensor of `rank` dimensions (NC…, OI…, GOI…).
func dnnlPlainTag(rank: Int) -> dnnl_format_tag_t {
    switch rank {
    case 1: return dnnl_a
    case 2: return dnnl_ab
    case 3: return dnnl_abc
    case 4: return dnnl_abcd
    case 5: return dnnl_abcde
    default: return dnnl_abcdef
    }
}

/// Runs `make`, which creates oneDNN primitives, with OpenMP at one thread (oneDNN sizes a kernel's
/// work split on the creating thread's setting, and every run uses one), naming `what` in an error
/// that is not already a `RuntimeError`.
func dnnlCreating<Result>(_ what: String, _ make: () throws -> Result) throws(RuntimeError) -> Result {
    LibraryThreads.useOpenMP(threads: 1)
    do {
        return try make()
    } catch let error as RuntimeError {
        throw error
    } catch {
        throw RuntimeError("\(what): \(error)")
    }
}

extension Dictionary {
    /// Stores a made primitive (or refusal) under `key` in a cache of at most `limit` entries, emptied
    /// when full: callers feeding ever new sizes (images of every size) would otherwise keep one for
    /// each forever, and rebuilding one is cheap next to a run.
    mutating func insert(cached value: Value, forKey key: Key, limit: Int) {
        if count >= limit { removeAll() }
        self[key] = value
    }
}

/// Whether two memory descriptors describe the same layout.
func dnnlSame(_ a: dnnl_memory_desc_t, _ b: dnnl_memory_desc_t) -> Bool {
    var a = a, b = b
    return dnnl_memory_desc_equal(&a, &b) != 0
}

/// Memory owned by Swift, 64-byte aligned as oneDNN's blocked kernels prefer.
final class DNNLBuffer: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
    let byteCount: Int
    init(byteCount: Int) {
        self.byteCount = byteCount
        pointer = .allocate(byteCount: max(64, byteCount), alignment: 64)
    }
    deinit { pointer.deallocate() }

    /// A new buffer holding `data` (laid out as `plain`) reordered into `layout`: constant weights
    /// put once into the layout a primitive asked for.
    static func reordered(
        _ data: UnsafeRawPointer, from plain: dnnl_memory_desc_t, to layout: dnnl_memory_desc_t,
        engine: dnnl_engine_t
    ) throws -> DNNLBuffer {
        let reorder = try DNNLPrimitive.reorder(from: plain, to: layout, engine: engine)
        var layoutCopy = layout
        let buffer = DNNLBuffer(byteCount: dnnl_memory_desc_get_size(&layoutCopy))
        let scratch = DNNLBuffer(byteCount: reorder.scratchpadBytes)
        let from = try DNNLMemory(plain, UnsafeMutableRawPointer(mutating: data), engine: engine)
        let to = try DNNLMemory(layout, buffer.pointer, engine: engine)
        let scratchpad = try DNNLMemory.scratchpad(scratch.pointer, bytes: reorder.scratchpadBytes, engine: engine)
        try reorder.run(
            [
                dnnl_exec_arg_t(arg: DNNL_ARG_FROM, memory: from.handle),
                dnnl_exec_arg_t(arg: DNNL_ARG_TO, memory: to.handle)
            ],
            engine: engine, scratchpad: scratchpad?.handle)
        return buffer
    }
}

/// A oneDNN primitive and the descriptor of its scratch memory; destroyed with the object.
/// oneDNN primitives are stateless once made (scratch memory comes from the caller here), so one
/// may run on several threads at once.
final class DNNLPrimitive: @unchecked Sendable {
    let handle: dnnl_primitive_t
    let scratchpadBytes: Int
    let implementation: String

    /// Makes the primitive of `descriptor` (which stays owned by the caller).
    init(_ descriptor: dnnl_primitive_desc_t, _ what: String) throws {
        var primitive: dnnl_primitive_t?
        try dnnlCheck(dnnl_primitive_create(&primitive, descriptor), "creating the \(what) primitive")
        handle = primitive!
        scratchpadBytes = dnnl_memory_desc_get_size(
            dnnl_primitive_desc_query_md(descriptor, dnnl_query_scratchpad_md, 0))
        var name: UnsafePointer<CChar>?
        if dnnl_primitive_desc_query(descriptor, dnnl_query_impl_info_str, 0, &name) == dnnl_success, let name {
            implementation = String(cString: name)
        } else {
            implementation = "?"
        }
    }

    /// A reorder from `source` to `target` layout.
    static func reorder(
        from source: dnnl_memory_desc_t, to target: dnnl_memory_desc_t,
        engine: dnnl_engine_t
    ) throws -> DNNLPrimitive {
        var source = source, target = target
        let attributes = try DNNLAttributes()
        var descriptor: dnnl_primitive_desc_t?
        try dnnlCheck(
            dnnl_reorder_primitive_desc_create(&descriptor, &source, engine, &target, engine, attributes.handle),
            "reorder descriptor")
        defer { dnnl_primitive_desc_destroy(descriptor) }
        return try DNNLPrimitive(descriptor!, "reorder")
    }

    /// Runs the primitive once on a stream of its own and waits for it: how one single-threaded
    /// slice of a batch, or a one-off reorder, runs.
    func run(_ arguments: [dnnl_exec_arg_t], engine: dnnl_engine_t, scratchpad: dnnl_memory_t? = nil) throws {
        let stream = try DNNLStream(engine: engine)
        try execute(arguments, stream: stream.handle, scratchpad: scratchpad)
        try stream.wait()
    }

    /// Runs the primitive on `arguments` (argument index, memory) in `stream`, adding the scratch
    /// memory it asked for.
    func execute(_ arguments: [dnnl_exec_arg_t], stream: dnnl_stream_t, scratchpad: dnnl_memory_t?) throws {
        var arguments = arguments
        if scratchpadBytes > 0, let scratchpad {
            arguments.append(dnnl_exec_arg_t(arg: DNNL_ARG_SCRATCHPAD, memory: scratchpad))
        }
        try dnnlCheck(
            dnnl_primitive_execute(handle, stream, Int32(arguments.count), arguments), "executing \(implementation)")
    }

    deinit { dnnl_primitive_destroy(handle) }
}

/// Primitive attributes with scratch memory supplied by the caller, which is what makes a
/// primitive safe to run on several threads at once (the library's own scratch is shared).
final class DNNLAttributes {
    let handle: dnnl_primitive_attr_t
    init() throws {
        var attributes: dnnl_primitive_attr_t?
        try dnnlCheck(dnnl_primitive_attr_create(&attributes), "creating primitive attributes")
        handle = attributes!
        try dnnlCheck(
            dnnl_primitive_attr_set_scratchpad_mode(handle, dnnl_scratchpad_mode_user), "setting the scratchpad mode")
    }
    deinit { dnnl_primitive_attr_destroy(handle) }

    /// Attributes that also run `postOps`, in order, on the primitive's output.
    convenience init(postOps: [DNNLConvolution.PostOp]) throws {
        try self.init()
        guard !postOps.isEmpty else { return }
        var operations: dnnl_post_ops_t?
        try dnnlCheck(dnnl_post_ops_create(&operations), "creating post-ops")
        defer { dnnl_post_ops_destroy(operations) }
        for postOp in postOps {
            try dnnlCheck(
                dnnl_post_ops_append_eltwise(operations, 1, postOp.algorithm, postOp.alpha, postOp.beta),
                "appending an eltwise post-op")
        }
        try dnnlCheck(dnnl_primitive_attr_set_post_ops(handle, operations), "setting post-ops")
    }
}

/// A memory object over caller memory, destroyed with the Swift object.
final class DNNLMemory {
    let handle: dnnl_memory_t
    init(_ descriptor: dnnl_memory_desc_t, _ data: UnsafeMutableRawPointer, engine: dnnl_engine_t) throws {
        var descriptor = descriptor
        var memory: dnnl_memory_t?
        try dnnlCheck(dnnl_memory_create(&memory, &descriptor, engine, data), "creating a memory object")
        handle = memory!
    }
    deinit { dnnl_memory_destroy(handle) }

    /// Points the object at other memory of the same layout.
    func setData(_ data: UnsafeMutableRawPointer) throws {
        try dnnlCheck(dnnl_memory_set_data_handle(handle, data), "moving a memory object")
    }

    /// A byte array over `bytes` at `pointer` for a primitive's scratch memory, nil when it needs none.
    static func scratchpad(_ pointer: UnsafeMutableRawPointer, bytes: Int, engine: dnnl_engine_t) throws -> DNNLMemory?
    {
        guard bytes > 0 else { return nil }
        var layout = dnnl_memory_desc_t()
        try dnnlCheck(
            dnnl_memory_desc_init_by_tag(&layout, 1, [dnnl_dim_t(bytes)], dnnl_u8, dnnl_a), "scratchpad descriptor")
        return try DNNLMemory(layout, pointer, engine: engine)
    }
}

/// A CPU stream for one run; created per call because oneDNN streams are not meant to be shared
/// between threads and making one costs little next to a convolution.
final class DNNLStream {
    let handle: dnnl_stream_t
    init(engine: dnnl_engine_t) throws {
        var stream: dnnl_stream_t?
        try dnnlCheck(
            dnnl_stream_create(&stream, engine, UInt32(dnnl_stream_default_flags.rawValue)), "creating a stream")
        handle = stream!
    }
    func wait() throws { try dnnlCheck(dnnl_stream_wait(handle), "waiting for the stream") }
    deinit { dnnl_stream_destroy(handle) }
}

/// A batch cut into one slice per runtime thread, each run by a single-threaded oneDNN primitive:
/// `extra` slices of `base + 1` images first, then slices of `base`. (Letting oneDNN thread with
/// OpenMP instead made a one-image ResNet-18 run 6× slower: libgomp's idle workers spin after every
/// call on the cores the runtime's threads need next.)
struct BatchSlices {
    let count: Int
    let base: Int
    let extra: Int

    init(batch: Int, threads: Int) {
        count = max(1, min(threads, batch))
        base = batch / count
        extra = batch % count
    }

    /// The first image of slice `slice`.
    func first(of slice: Int) -> Int { slice * base + min(slice, extra) }

    /// The slice whose first image is `first` (what `run` hands its body).
    func slice(startingAt first: Int) -> Int {
        first < extra * (base + 1) ? first / (base + 1) : extra + (first - extra * (base + 1)) / base
    }

    /// Runs `body(first, images, large)` for every slice, the slices in parallel: `first` is the
    /// slice's first image, `large` whether it is one of the `base + 1` slices. The first error
    /// thrown is rethrown, other than `RuntimeError`s wrapped as "`operation`: …".
    func run(_ operation: String, _ body: (_ first: Int, _ images: Int, _ large: Bool) throws -> Void) throws {
        let failure = Locked<RuntimeError?>(nil)
        Parallel.forEach(count, threads: count) { range in
            LibraryThreads.useOpenMP(threads: 1)
            for slice in range {
                let large = slice < extra
                do {
                    try body(slice * base + min(slice, extra), large ? base + 1 : base, large)
                } catch {
                    let error = error as? RuntimeError ?? RuntimeError("\(operation): \(error)")
                    failure.withLock { if $0 == nil { $0 = error } }
                }
            }
        }
        if let error = failure.withLock({ $0 }) { throw error }
    }
}
