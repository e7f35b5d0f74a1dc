import LetheCore
import LetheIR

extension WorkingGraph {
    /// Lets MatMul and Gemm read a constant 2-D weight `W` as their transposed right-hand side
    /// instead of a `Transpose(W)` node: how PyTorch exports `nn.Linear` on 3-D activations
    /// (`MatMul(x, Transpose(W))`). Folding those Transposes made a second, transposed copy of every
    /// such weight beside the model's own — 311 MB on ViT-B/16's 346 MB of weights — while the GEMM
    /// and oneDNN's matmul read a transposed operand at no cost.
    ///
    /// Fires only where the Transpose's output disappears entirely: every reader takes it as input 1
    /// of a MatMul or Gemm (and nowhere else), and it is no graph output or tapped value. Runs before
    /// `foldConstants`, which would otherwise materialise the copy.
    mutating func fuseWeightTransposes() {
        let readers = readers()
        var removed = Set<Int>()
        var rewritten: [Int: Entry] = [:]
        for (index, entry) in entries.enumerated() where entry.node.opType == "Transpose" && entry.node.domain.isEmpty {
            let transpose = entry.node
            guard transpose.inputs.count == 1, transpose.outputs.count == 1,
                let weight = constants[transpose.inputs[0]], weight.rank == 2, weight.dtype == .float32,
                let perm = try? request(for: entry).ints("perm") ?? [], perm.isEmpty || perm == [1, 0]
            else { continue }
            let transposed = transpose.outputs[0]
            guard !outputs.contains(transposed), !required.contains(transposed),
                let products = readers[transposed], !products.isEmpty
            else { continue }
            var replacements: [Int: Entry] = [:]
            for reader in Set(products) {
                guard let replacement = readingWeight(entries[reader], transpose.inputs[0], for: transposed) else {
                    replacements = [:]
                    break
                }
                replacements[reader] = replacement
            }
            guard !replacements.isEmpty else { continue }
            rewritten.merge(replacements) { _, new in new }
            removed.insert(index)
        }
        replace(rewritten, removing: removed)
    }

    /// `entry` reading `weight` in place of its transpose `transposed`, or nil when `entry` is no
    /// MatMul or Gemm that reads `transposed` only as its right-hand side.
    private func readingWeight(_ entry: Entry, _ weight: String, for transposed: String) -> Entry? {
        var node = entry.node
        guard node.domain.isEmpty, node.inputs.count >= 2, node.inputs[1] == transposed,
            node.inputs.enumerated().allSatisfy({ $0.offset == 1 || $0.element != transposed })
        else { return nil }
        var result = entry
        switch node.opType {
        case "MatMul":
            guard node.inputs.count == 2, !entry.weightTransposed else { return nil }
            result.weightTransposed = true
        case "Gemm":
            guard let transB = try? request(for: entry).int("transB", 0) else { return nil }
            node.attributes.removeAll { $0.name == "transB" }
            node.attributes.append((name: "transB", value: .int(transB == 0 ? 1 : 0)))
        default:
            return nil
        }
        node.inputs[1] = weight
        result.node = node
        return result
    }
}
