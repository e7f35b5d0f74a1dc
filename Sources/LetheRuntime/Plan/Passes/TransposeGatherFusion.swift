import LetheCore
import LetheIR

extension WorkingGraph {
    /// Replaces a Transpose whose every reader is a Gather on axis 0 with one scalar constant index
    /// (a ViT's q/k/v split of the permuted qkv tensor) by one strided copy per Gather straight
    /// from the Transpose's input, so the permuted tensor is never written whole.
    mutating func fuseTransposeIntoGathers() {
        let readers = readers()
        var removed = Set<Int>()
        for (index, entry) in entries.enumerated() where entry.node.opType == "Transpose" && entry.node.domain.isEmpty {
            let transpose = entry.node
            guard transpose.inputs.count == 1, transpose.outputs.count == 1,
                let perm = try? request(for: entry).ints("perm"), !perm.isEmpty,
                !outputs.contains(transpose.outputs[0]), !required.contains(transpose.outputs[0]),
                let gathers = readers[transpose.outputs[0]], !gathers.isEmpty
            else { continue }
            let allScalarGathers = gathers.allSatisfy { g in
                let node = entries[g].node
                guard node.opType == "Gather", node.domain.isEmpty, node.inputs.count == 2, node.outputs.count == 1,
                    node.inputs[0] == transpose.outputs[0], let index = constants[node.inputs[1]]
                else { return false }
                return index.rank == 0 && index.dtype.isInteger && (try? request(for: entries[g]).int("axis", 0)) == 0
            }
            guard allScalarGathers else { continue }
            for g in gathers {
                var node = entries[g].node
                node.opType = "TransposedGather"
                node.domain = OperatorRegistry.internalDomain
                node.inputs[0] = transpose.inputs[0]
                node.attributes = [(name: "perm", value: .ints(perm))]
                entries[g] = Entry(node: node)
            }
            removed.insert(index)
        }
        entries = entries.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    }
}
