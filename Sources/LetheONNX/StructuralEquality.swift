import LetheCore
import LetheIR

/// Compares IR models in everything but tensor contents, to tell whether a write can patch the
/// original bytes in place.
enum StructuralEquality {
    static func equal(_ a: Model, _ b: Model) -> Bool {
        a.irVersion == b.irVersion && a.producerName == b.producerName && a.producerVersion == b.producerVersion
            && a.docString == b.docString
            && a.metadata.elementsEqual(b.metadata) { $0.key == $1.key && $0.value == $1.value }
            && a.opsets.elementsEqual(b.opsets) { $0.domain == $1.domain && $0.version == $1.version }
            && equal(a.graph, b.graph)
    }

    static func equal(_ a: Graph, _ b: Graph) -> Bool {
        a.name == b.name && a.docString == b.docString
            && a.inputs == b.inputs && a.outputs == b.outputs && a.valueInfos == b.valueInfos
            && a.initializers.elementsEqual(b.initializers) { $0.name == $1.name && sameLayout($0.tensor, $1.tensor) }
            && a.nodes.elementsEqual(b.nodes, by: equal)
    }

    static func equal(_ a: Node, _ b: Node) -> Bool {
        a.name == b.name && a.opType == b.opType && a.domain == b.domain && a.inputs == b.inputs
            && a.outputs == b.outputs && a.docString == b.docString
            && a.attributes.elementsEqual(b.attributes) { $0.name == $1.name && equal($0.value, $1.value) }
    }

    static func equal(_ a: Attribute, _ b: Attribute) -> Bool {
        switch (a, b) {
        case (.float(let x), .float(let y)): x.bitPattern == y.bitPattern
        case (.int(let x), .int(let y)): x == y
        case (.string(let x), .string(let y)): x == y
        case (.floats(let x), .floats(let y)): x.elementsEqual(y) { $0.bitPattern == $1.bitPattern }
        case (.ints(let x), .ints(let y)): x == y
        case (.strings(let x), .strings(let y)): x == y
        case (.tensor(let x), .tensor(let y)): sameLayout(x, y)
        case (.tensors(let x), .tensors(let y)): x.elementsEqual(y, by: sameLayout)
        case (.graph(let x), .graph(let y)): equal(x, y)
        case (.graphs(let x), .graphs(let y)): x.elementsEqual(y, by: equal)
        case (.opaque(let x), .opaque(let y)): x == y
        default: false
        }
    }

    static func sameLayout(_ a: Tensor, _ b: Tensor) -> Bool {
        a.dtype == b.dtype && a.shape == b.shape
    }

    /// True when `tensor` still holds the bytes it was read with.
    static func unchanged(_ tensor: Tensor, _ original: Tensor) -> Bool {
        tensor.storage === original.storage || tensor.isBitwiseEqual(to: original)
    }
}

extension ONNXSource {
    /// Calls `body` with every tensor of `graph` and its path in the original proto. Only valid
    /// for a graph structurally equal to the one read at `path`.
    func visitTensors(of graph: Graph, path: ProtoPath, _ body: (ProtoPath, Tensor) throws -> Void) throws {
        let indices = initializerIndices[path] ?? []
        for (i, initializer) in graph.initializers.enumerated() where i < indices.count {
            try body(path.appending(ONNXField.Graph.initializer, indices[i]), initializer.tensor)
        }
        for (j, node) in graph.nodes.enumerated() {
            let nodePath = path.appending(ONNXField.Graph.node, j)
            for (k, attribute) in node.attributes.enumerated() {
                let attributePath = nodePath.appending(ONNXField.Node.attribute, k)
                switch attribute.value {
                case .tensor(let t): try body(attributePath.appending(ONNXField.Attribute.tensor, 0), t)
                case .tensors(let ts):
                    for (m, t) in ts.enumerated() {
                        try body(attributePath.appending(ONNXField.Attribute.tensors, m), t)
                    }
                case .graph(let g):
                    try visitTensors(of: g, path: attributePath.appending(ONNXField.Attribute.graph, 0), body)
                case .graphs(let gs):
                    for (m, g) in gs.enumerated() {
                        try visitTensors(of: g, path: attributePath.appending(ONNXField.Attribute.graphs, m), body)
                    }
                default: break
                }
            }
        }
    }
}
