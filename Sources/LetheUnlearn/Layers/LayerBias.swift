import LetheCore
import LetheIR

/// The constant bias a weight layer adds to its output, when it has one that only this layer reads:
/// a Conv's or Gemm's third input, or the constant side of the single `Add` that consumes a
/// MatMul's output (how PyTorch exports `nn.Linear` on batched sequences).
///
/// The erasure method moves a layer's bias along with its weight (the refit is affine); a layer
/// without such a bias is refit as a linear map.
public struct LayerBias: Sendable {
    public var source: WeightSource
    public var tensor: Tensor

    /// The bias of every use of `layer`, when all uses add the same `O`-element constant and
    /// nothing else reads it.
    public static func find(for layer: WeightLayer, in graph: Graph) -> LayerBias? {
        find(for: layer, in: graph, links: GraphLinks(graph))
    }

    static func find(for layer: WeightLayer, in graph: Graph, links: GraphLinks) -> LayerBias? {
        let producers = links.producers, readers = links.readers, initializers = links.initializers
        var found: LayerDiscovery.Constant?
        var readersAllowed = Set<Int>()
        for use in layer.uses {
            guard use.nodeIndex < graph.nodes.count else { return nil }
            let node = graph.nodes[use.nodeIndex]
            let biasValue: String
            switch node.opType {
            case "Conv", "Gemm":
                guard node.inputs.count >= 3, !node.inputs[2].isEmpty else { return nil }
                biasValue = node.inputs[2]
                readersAllowed.insert(use.nodeIndex)
            case "MatMul":
                guard let output = node.outputs.first, let consumers = readers[output], consumers.count == 1,
                    !graph.outputs.contains(where: { $0.name == output })
                else { return nil }
                let add = graph.nodes[consumers[0]]
                guard add.opType == "Add", add.inputs.count == 2 else { return nil }
                biasValue = add.inputs[0] == output ? add.inputs[1] : add.inputs[0]
                readersAllowed.insert(consumers[0])
            default:
                return nil
            }
            guard
                let constant = LayerDiscovery.resolveConstant(
                    biasValue, graph: graph, producers: producers, initializers: initializers),
                !constant.transposed, constant.tensor.elementCount == layer.outputDimension,
                constant.tensor.shape.last == layer.outputDimension
            else { return nil }
            if let found, found.source != constant.source { return nil }
            found = constant
            for link in constant.chain { if let producer = producers[link] { readersAllowed.insert(producer) } }
        }
        guard let found else { return nil }
        // A bias read by any other node is tied to it: moving it would change that node too.
        for link in found.chain {
            for reader in readers[link] ?? [] where !readersAllowed.contains(reader) {
                let node = graph.nodes[reader]
                guard node.opType == "Identity", node.outputs.allSatisfy({ found.chain.contains($0) }) else {
                    return nil
                }
            }
        }
        return LayerBias(source: found.source, tensor: found.tensor)
    }
}
