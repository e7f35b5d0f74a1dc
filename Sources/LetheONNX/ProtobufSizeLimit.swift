import LetheIR

/// Protobuf's 2 GB message limit, judged by the tensor data a model would hold inline.
extension ProtoRebuild {
    /// Headroom for everything but tensor data when judging protobuf's 2 GB limit.
    static let protobufLimit = Int(Int32.max) - (64 << 20)

    /// Bytes of tensor data that would sit inside the model message.
    static func inlineBytes(_ graph: Graph, original: ONNXSource?, threshold: Int?) -> Int {
        var total = 0
        for initializer in graph.initializers {
            let size = initializer.tensor.byteCount
            if let threshold, size >= threshold { continue }
            total = total &+ size
        }
        for node in graph.nodes {
            for (_, value) in node.attributes {
                switch value {
                case .tensor(let t): total = total &+ t.byteCount
                case .tensors(let ts): total = ts.reduce(total) { $0 &+ $1.byteCount }
                case .graph(let g): total = total &+ inlineBytes(g, original: original, threshold: threshold)
                case .graphs(let gs):
                    total = gs.reduce(total) { $0 &+ inlineBytes($1, original: original, threshold: threshold) }
                default: break
                }
            }
        }
        return total
    }
}
