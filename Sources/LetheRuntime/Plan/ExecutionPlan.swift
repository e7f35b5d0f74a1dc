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
    }

    let steps: [Step]
    let slotCount: Int
    let constants: [(slot: Int, tensor: Tensor)]
    let inputs: [(info: ValueInfo, slot: Int)]
    let outputs: [(name: String, slot: Int)]
    /// Slots of the values taps asked for.
    let slotsByValue: [String: Int]
    /// Released intermediates, reused by later steps and runs.
    let pool = BufferPool()

    /// Rewrites and plans `model`, keeping every value in `required` visible.
    init(model: Model, required: Set<String>, context: ExecutionContext) throws {
        var graph = WorkingGraph(model: model, required: required)
        try graph.sortTopologically()
        graph.foldConstants(context: context)
        graph.foldBatchNormIntoConv()
        graph.fuseErfGelu()
        graph.fuseTanhGelu()
        graph.fuseOneHotLookups(context: context)
        graph.fuseSquareIntoReduce()
        graph.fuseTransposeIntoGathers()
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
        var constants: [(Int, Tensor)] = []
        var lastUse: [Int: Int] = [:]
        var kernels: [(any Kernel, [Int?], [Int?], Node)] = []
        for (index, entry) in graph.entries.enumerated() {
            let node = entry.node
            guard let factory = OperatorRegistry.factory(for: node) else {
                throw UnsupportedOperatorError(issues: [
                    .init(node: node.name, opType: node.opType, reason: "operator is not supported")
                ])
            }
            let kernel: any Kernel
            do {
                kernel = try factory(graph.request(for: entry))
            } catch let error as Unsupported {
                throw UnsupportedOperatorError(issues: [
                    .init(node: node.name, opType: node.opType, reason: error.reason)
                ])
            }
            let inputSlots: [Int?] = node.inputs.map { name in
                guard !name.isEmpty else { return nil }
                let s = slot(name)
                lastUse[s] = index
                return s
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
        // Never release graph outputs, required values, inputs or constants.
        var pinned = Set(outputs.map(\.1))
        pinned.formUnion(required.compactMap { slots[$0] })
        pinned.formUnion(constants.map(\.0))
        pinned.formUnion(inputs.map(\.slot))
        var releaseAt: [Int: [Int]] = [:]
        for (s, index) in lastUse where !pinned.contains(s) { releaseAt[index, default: []].append(s) }
        // Values produced but never read are released at once.
        for (index, entry) in kernels.enumerated() {
            for case let s? in entry.2 where lastUse[s] == nil && !pinned.contains(s) {
                releaseAt[index, default: []].append(s)
            }
        }
        steps = kernels.enumerated().map { index, entry in
            Step(
                kernel: entry.0, inputs: entry.1, outputs: entry.2, release: releaseAt[index] ?? [],
                name: entry.3.name, opType: entry.3.opType)
        }
        self.constants = constants
        self.outputs = outputs
        slotCount = slots.count
        slotsByValue = slots.filter { required.contains($0.key) }
    }

    /// Runs the plan. `taps` maps slots to callbacks, called as soon as the value exists.
    func execute(
        _ feeds: [String: Tensor], taps: [Int: [@Sendable (Tensor) throws -> Void]],
        context: ExecutionContext
    ) throws -> [String: Tensor] {
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
        for (slot, tensor) in constants { values[slot] = tensor }
        for (info, slot) in inputs {
            guard let tensor = feeds[info.name] else { throw RuntimeError("input '\(info.name)' is missing") }
            values[slot] = tensor
        }
        func notify(_ slot: Int) throws {
            guard let callbacks = taps[slot], let tensor = values[slot] else { return }
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
            let results: [Tensor]
            let start = profile == nil ? 0 : StepProfile.now()
            do {
                results = try step.kernel.run(step.inputs.map { $0.flatMap { values[$0] } }, context)
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
                values[slot] = results[index]
                if taps[slot] != nil { try notify(slot) }
            }
            for slot in step.release { pool.recycle(&values[slot]) }
        }
        var result: [String: Tensor] = [:]
        for (name, slot) in outputs {
            guard let tensor = values[slot] else { throw RuntimeError("output '\(name)' was not produced") }
            result[name] = tensor
        }
        return result
    }
}
