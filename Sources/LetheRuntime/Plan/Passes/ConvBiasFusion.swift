import LetheCore
import LetheIR

extension WorkingGraph {
    /// Moves a per-channel bias Add (and the activation fused into it) that reaches a bias-less 2-D
    /// Conv through a Slice that keeps every channel and a Squeeze of spatial axes — how JAX's
    /// magika exports its convolution — into the Conv itself, as its bias input and activation:
    /// both commute with slicing and squeezing other axes, and the convolution then adds the bias
    /// as it produces each output instead of a pass of its own over the whole result.
    mutating func fuseConvBiasThroughSqueeze() {
        let uses = useCounts()
        let producer = producers()
        func internalProducer(_ value: String, _ op: String) -> Int? {
            guard isInternal(value, uses: uses), let index = producer[value], entries[index].node.opType == op,
                entries[index].node.domain.isEmpty, entries[index].node.outputs.count == 1
            else { return nil }
            return index
        }
        func ints(_ name: String) -> [Int]? {
            guard let t = constants[name], t.dtype.isInteger else { return nil }
            return t.int64Values().map { Int(truncatingIfNeeded: $0) }
        }
        var removed = Set<Int>()
        for (addIndex, add) in entries.enumerated() where add.node.opType == "Add" && add.node.domain.isEmpty {
            guard add.node.inputs.count == 2, add.node.outputs.count == 1, !removed.contains(addIndex) else { continue }
            for side in 0..<2 {
                guard let bias = constants[add.node.inputs[1 - side]], bias.dtype == .float32,
                    let squeezeIndex = internalProducer(add.node.inputs[side], "Squeeze"),
                    entries[squeezeIndex].node.inputs.count == 2,
                    let squeezed = ints(entries[squeezeIndex].node.inputs[1]),
                    let sliceIndex = internalProducer(entries[squeezeIndex].node.inputs[0], "Slice"),
                    let convIndex = internalProducer(entries[sliceIndex].node.inputs[0], "Conv"),
                    removed.isDisjoint(with: [squeezeIndex, sliceIndex, convIndex])
                else { continue }
                let conv = entries[convIndex]
                guard conv.node.inputs.count == 2, conv.activation == nil,
                    let weight = constants[conv.node.inputs[1]], weight.rank == 4
                else { continue }
                let channels = weight.shape[0], rank = 4
                // The Squeeze drops spatial axes only (channels stay axis 1).
                let drop = squeezed.map { $0 < 0 ? $0 + rank : $0 }
                guard drop.allSatisfy({ $0 >= 2 && $0 < rank }), Set(drop).count == drop.count else { continue }
                // The Slice keeps every channel.
                let slice = entries[sliceIndex].node
                guard slice.inputs.count >= 3, let starts = ints(slice.inputs[1]), let ends = ints(slice.inputs[2])
                else { continue }
                let axes =
                    slice.inputs.count > 3 && !slice.inputs[3].isEmpty ? ints(slice.inputs[3]) : Array(0..<starts.count)
                let steps = slice.inputs.count > 4 && !slice.inputs[4].isEmpty ? ints(slice.inputs[4]) : nil
                guard let axes, axes.count == starts.count, ends.count == starts.count,
                    slice.inputs.count <= 4 || slice.inputs[4].isEmpty || steps?.count == starts.count
                else { continue }
                let keepsChannels = axes.enumerated().allSatisfy { k, axis in
                    (axis < 0 ? axis + rank : axis) != 1
                        || (starts[k] == 0 && ends[k] >= channels && (steps?[k] ?? 1) == 1)
                }
                // The bias varies along the channel axis only, and cannot raise the rank.
                let resultRank = rank - drop.count
                let channelPosition = 1 - (resultRank - bias.rank)
                guard keepsChannels, bias.rank <= resultRank,
                    bias.shape.enumerated().allSatisfy({
                        $0.element == 1 || ($0.offset == channelPosition && $0.element == channels)
                    })
                else { continue }
                let values = bias.floatValues()
                let perChannel = values.count == 1 ? [Float](repeating: values[0], count: channels) : values
                let biasName = freshName(conv.node.name + "::bias")
                constants[biasName] = Tensor(shape: [channels], values: perChannel)
                entries[convIndex].node.inputs.append(biasName)
                entries[convIndex].activation = add.activation
                entries[squeezeIndex].node.outputs = add.node.outputs
                removed.insert(addIndex)
                break
            }
        }
        entries = entries.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    }
}
