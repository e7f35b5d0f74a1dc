import LetheCore
import LetheIR

extension WorkingGraph {
    /// Moves a MatMul's constant bias Add, then a following activation, into the producing
    /// Conv/Gemm/MatMul, so each output row is finished while it is still in cache.
    mutating func fuseEpilogues() {
        fuseMatMulBias()
        fuseActivations()
    }

    private mutating func fuseMatMulBias() {
        let uses = useCounts()
        let producer = producers()
        var removed = Set<Int>()
        for (index, entry) in entries.enumerated() where entry.node.opType == "Add" && entry.node.inputs.count == 2 {
            let add = entry.node
            for side in 0..<2 {
                let product = add.inputs[side], biasName = add.inputs[1 - side]
                guard let matmulIndex = producer[product], !removed.contains(matmulIndex),
                    entries[matmulIndex].node.opType == "MatMul", entries[matmulIndex].fusedBias == nil,
                    entries[matmulIndex].activation == nil,
                    let weight = constants[entries[matmulIndex].node.inputs[1]], weight.rank == 2,
                    let bias = constants[biasName], bias.rank == 1,
                    bias.elementCount == weight.shape[entries[matmulIndex].weightTransposed ? 0 : 1],
                    bias.dtype.isFloatingPoint, isInternal(product, uses: uses)
                else { continue }
                entries[matmulIndex].fusedBias = bias.asFloat32()
                entries[matmulIndex].node.outputs = [add.outputs[0]]
                removed.insert(index)
                break
            }
        }
        entries = entries.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    }

    private mutating func fuseActivations() {
        let uses = useCounts()
        let producer = producers()
        var removed = Set<Int>()
        for (index, entry) in entries.enumerated() where Activation.opTypes.contains(entry.node.opType) {
            guard let input = entry.node.inputs.first, let target = producer[input], !removed.contains(target),
                ["Conv", "Gemm", "MatMul", "Add"].contains(entries[target].node.opType),
                entries[target].activation == nil, isInternal(input, uses: uses),
                let activation = try? Activation.from(request(for: entry))
            else { continue }
            if entries[target].node.opType == "MatMul" {
                // MatMul keeps its constant-B fast path only; other products stay unfused.
                guard let weight = constants[entries[target].node.inputs[1]], weight.rank == 2 else { continue }
            }
            entries[target].activation = activation
            entries[target].node.outputs = [entry.node.outputs[0]]
            removed.insert(index)
        }
        entries = entries.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    }
}
