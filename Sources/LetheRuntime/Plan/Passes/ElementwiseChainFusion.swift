import LetheCore
import LetheIR

extension WorkingGraph {
    /// Folds trees of Add/Sub/Mul/Div nodes whose intermediates nothing else reads into one
    /// `FusedElementwiseKernel`, which computes the tree's output in one pass without writing the
    /// intermediates (magika's LayerNorm tail `(x − mean) · (rsqrt · γ) + β`: four passes over
    /// [N, 512, 256] become one). Nodes with a fused activation are left alone.
    mutating func fuseElementwiseChains() {
        let uses = useCounts()
        let producer = producers()
        let readers = readers()
        let ops: [String: ElementwiseProgram.Op] = ["Add": .add, "Sub": .sub, "Mul": .mul, "Div": .div]
        func fusable(_ index: Int) -> Bool {
            let entry = entries[index]
            return entry.node.domain.isEmpty && ops[entry.node.opType] != nil && entry.node.inputs.count == 2
                && entry.node.outputs.count == 1 && entry.activation == nil && entry.fusedBias == nil
                && !entry.node.inputs.contains("")
        }
        /// Whether `index`'s output is folded into the node that reads it.
        func absorbed(_ index: Int) -> Bool {
            let output = entries[index].node.outputs[0]
            guard isInternal(output, uses: uses), let list = readers[output], list.count == 1 else { return false }
            return fusable(list[0])
        }
        var removed = Set<Int>()
        var replacements: [Int: Entry] = [:]
        for root in entries.indices where fusable(root) && !absorbed(root) {
            var leaves: [String] = []
            var instructions: [ElementwiseProgram.Instruction] = []
            var group: [Int] = []
            func operand(_ value: String) -> ElementwiseProgram.Operand {
                if let index = producer[value], fusable(index), absorbed(index), !removed.contains(index) {
                    return .result(emit(index))
                }
                if let k = leaves.firstIndex(of: value) { return .input(k) }
                leaves.append(value)
                return .input(leaves.count - 1)
            }
            func emit(_ index: Int) -> Int {
                let node = entries[index].node
                let lhs = operand(node.inputs[0]), rhs = operand(node.inputs[1])
                instructions.append(.init(op: ops[node.opType]!, lhs: lhs, rhs: rhs))
                group.append(index)
                return instructions.count - 1
            }
            _ = emit(root)
            guard instructions.count >= 2 else { continue }
            removed.formUnion(group)
            let node = entries[root].node
            var entry = Entry(
                node: Node(
                    name: node.name + "::fused", opType: "Elementwise", domain: OperatorRegistry.internalDomain,
                    inputs: leaves, outputs: node.outputs))
            entry.elementwise = ElementwiseProgram(instructions: instructions)
            // The root comes after every node of its tree.
            replacements[root] = entry
        }
        replace(replacements, removing: removed)
    }
}
