import LetheCore
import LetheIR

extension WorkingGraph {
    /// Folds an inference BatchNormalization into the Conv that feeds it: the Conv's weight is scaled
    /// per output channel and its bias shifted, so the BatchNormalization disappears. Skipped when
    /// the Conv's output must stay visible (a graph output, another reader, or a tap).
    mutating func foldBatchNormIntoConv() {
        var uses = useCounts()
        let producer = producers()
        var removed = Set<Int>()
        for (index, entry) in entries.enumerated() where entry.node.opType == "BatchNormalization" {
            let bn = entry.node
            guard bn.inputs.count >= 5, bn.outputs.count >= 1,
                bn.outputs.dropFirst().allSatisfy({ $0.isEmpty }),
                (try? request(for: entry).int("training_mode", 0)) == 0,
                let convIndex = producer[bn.inputs[0]], !removed.contains(convIndex)
            else { continue }
            let conv = entries[convIndex]
            guard conv.node.opType == "Conv", conv.activation == nil, isInternal(bn.inputs[0], uses: uses),
                conv.node.inputs.count >= 2, let weight = constants[conv.node.inputs[1]]?.asFloat32(),
                weight.rank >= 3
            else { continue }
            let parameters = bn.inputs[1...4].map { constants[$0] }
            guard parameters.allSatisfy({ $0 != nil }) else { continue }
            let channels = weight.shape[0]
            guard parameters.allSatisfy({ $0!.elementCount == channels }) else { continue }
            let oldBias: [Float]
            if conv.node.inputs.count >= 3, !conv.node.inputs[2].isEmpty {
                guard let b = constants[conv.node.inputs[2]], b.elementCount == channels else { continue }
                oldBias = b.floatValues()
            } else {
                oldBias = [Float](repeating: 0, count: channels)
            }
            let epsilon = (try? request(for: entry).float("epsilon", 1e-5)) ?? 1e-5
            let (scale, shift) = BatchNormKernel.affine(
                scale: parameters[0]!, bias: parameters[1]!, mean: parameters[2]!,
                variance: parameters[3]!, epsilon: epsilon)
            var values = weight.floatValues()
            let perChannel = values.count / max(1, channels)
            for c in 0..<channels { for i in 0..<perChannel { values[c * perChannel + i] *= scale[c] } }
            let bias = (0..<channels).map { oldBias[$0] * scale[$0] + shift[$0] }
            let weightName = freshName(conv.node.name + "::folded_weight")
            constants[weightName] = Tensor(shape: weight.shape, values: values)
            let biasName = freshName(conv.node.name + "::folded_bias")
            constants[biasName] = Tensor(shape: [channels], values: bias)
            var node = conv.node
            node.inputs = [node.inputs[0], weightName, biasName]
            node.outputs = [bn.outputs[0]]
            entries[convIndex].node = node
            removed.insert(index)
            uses[bn.inputs[0]] = 0
        }
        entries = entries.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    }
}
