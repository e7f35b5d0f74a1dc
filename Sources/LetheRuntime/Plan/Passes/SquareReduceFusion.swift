import LetheCore
import LetheIR

extension WorkingGraph {
    /// Folds `Mul(x, x)` into the ReduceSum or ReduceMean that alone reads it (a decomposed
    /// LayerNorm's E[x²]: magika squares [N, 512, 256] a chunk only to sum it over axis 1). The
    /// reduction squares each element in float32 as it reads it, exactly as the Mul stored it, so
    /// the sums are the same; where it has no such loop it squares the whole input first.
    mutating func fuseSquareIntoReduce() {
        let uses = useCounts()
        let producer = producers()
        var removed = Set<Int>()
        let fused = ["ReduceSum": "ReduceSumOfSquares", "ReduceMean": "ReduceMeanOfSquares"]
        for (index, entry) in entries.enumerated() {
            guard entry.node.domain.isEmpty, let name = fused[entry.node.opType],
                let squared = entry.node.inputs.first, isInternal(squared, uses: uses),
                let mulIndex = producer[squared], !removed.contains(mulIndex)
            else { continue }
            let mul = entries[mulIndex].node
            guard mul.opType == "Mul", mul.domain.isEmpty, mul.inputs.count == 2, mul.inputs[0] == mul.inputs[1],
                entries[mulIndex].activation == nil
            else { continue }
            entries[index].node.opType = name
            entries[index].node.domain = OperatorRegistry.internalDomain
            entries[index].node.inputs[0] = mul.inputs[0]
            removed.insert(mulIndex)
        }
        entries = entries.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    }
}
