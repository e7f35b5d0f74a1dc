import LetheIR

/// Graphs, value infos, initializer lists and nodes: the original's entries where they still
/// match the IR, new ones where they do not.
extension ProtoRebuild {
    typealias OriginalGraph = (proto: Onnx_GraphProto, ir: Graph, path: ProtoPath)

    /// A graph message: the original's where given, with every field the IR covers set from `graph`.
    mutating func buildGraph(_ graph: Graph, original: OriginalGraph?) throws -> Onnx_GraphProto {
        var proto = original?.proto ?? Onnx_GraphProto()
        if graph.name != proto.name || proto.hasName { proto.name = graph.name }
        if graph.docString != proto.docString || proto.hasDocString { proto.docString = graph.docString }
        proto.input = valueInfos(graph.inputs, original: original.map { ($0.proto.input, $0.ir.inputs) })
        proto.output = valueInfos(graph.outputs, original: original.map { ($0.proto.output, $0.ir.outputs) })
        proto.valueInfo = valueInfos(
            graph.valueInfos, original: original.map { ($0.proto.valueInfo, $0.ir.valueInfos) })
        proto.initializer = try initializers(graph, original: original)
        proto.node = try nodes(graph, original: original)
        return proto
    }

    /// Value infos in the IR's order, each the original message where the IR's entry is unchanged.
    func valueInfos(
        _ infos: [ValueInfo],
        original: ([Onnx_ValueInfoProto], [ValueInfo])?
    ) -> [Onnx_ValueInfoProto] {
        var byName: [String: (Onnx_ValueInfoProto, ValueInfo)] = [:]
        if let (protos, irs) = original {
            for (p, v) in zip(protos, irs) where byName[v.name] == nil { byName[v.name] = (p, v) }
        }
        return infos.map { info in
            if let (p, v) = byName[info.name], v == info { return p }
            return ProtoRebuild.valueInfoProto(info)
        }
    }

    /// A fresh value info message for `info`.
    static func valueInfoProto(_ info: ValueInfo) -> Onnx_ValueInfoProto {
        var proto = Onnx_ValueInfoProto()
        proto.name = info.name
        if !info.docString.isEmpty { proto.docString = info.docString }
        if info.dtype != nil || info.shape != nil {
            var type = Onnx_TypeProto.Tensor()
            type.elemType = info.dtype.map(ONNXDataType.code(for:)) ?? ONNXDataType.undefined
            if let shape = info.shape {
                var shapeProto = Onnx_TensorShapeProto()
                shapeProto.dim = shape.map { dim in
                    var d = Onnx_TensorShapeProto.Dimension()
                    switch dim {
                    case .fixed(let n): d.dimValue = Int64(n)
                    case .symbolic(let name): d.dimParam = name
                    case .unknown: break
                    }
                    return d
                }
                type.shape = shapeProto
            }
            proto.type.tensorType = type
        }
        return proto
    }

    /// Initializers in the original's order (new ones after), each placed inline or in the data file.
    mutating func initializers(_ graph: Graph, original: OriginalGraph?) throws -> [Onnx_TensorProto] {
        var newByName: [String: Int] = [:]
        for (i, initializer) in graph.initializers.enumerated() where newByName[initializer.name] == nil {
            newByName[initializer.name] = i
        }
        var out: [Onnx_TensorProto] = []
        var emitted = Set<Int>()
        if let original {
            // Original order for names that survive; carried kinds stay; removed ones go.
            let mapped = Set(source?.initializerIndices[original.path] ?? [])
            for (index, proto) in original.proto.initializer.enumerated() {
                let path = original.path.appending(ONNXField.Graph.initializer, index)
                if !mapped.contains(index) {
                    if newByName[proto.name] == nil { out.append(try keptTensor(proto, path: path)) }
                    continue
                }
                guard let i = newByName[proto.name], !emitted.contains(i) else { continue }
                emitted.insert(i)
                out.append(
                    try tensorProto(
                        graph.initializers[i].tensor, name: proto.name,
                        original: (proto, path), isInitializer: true))
            }
        }
        for (i, initializer) in graph.initializers.enumerated() where !emitted.contains(i) {
            out.append(try tensorProto(initializer.tensor, name: initializer.name, original: nil, isInitializer: true))
        }
        return out
    }

    /// Nodes in the IR's order, each built on the original node with the same operator and outputs.
    mutating func nodes(_ graph: Graph, original: OriginalGraph?) throws -> [Onnx_NodeProto] {
        var byKey: [String: Int] = [:]
        if let original {
            for (j, node) in original.ir.nodes.enumerated() {
                let key = ProtoRebuild.nodeKey(node)
                if byKey[key] == nil { byKey[key] = j }
            }
        }
        var out: [Onnx_NodeProto] = []
        out.reserveCapacity(graph.nodes.count)
        for node in graph.nodes {
            let match = original.flatMap { o in byKey[ProtoRebuild.nodeKey(node)].map { j in (o, j) } }
            var proto = match.map { $0.0.proto.node[$0.1] } ?? Onnx_NodeProto()
            proto.input = node.inputs
            proto.output = node.outputs
            if node.name != proto.name || proto.hasName { proto.name = node.name }
            proto.opType = node.opType
            if node.domain != proto.domain || proto.hasDomain { proto.domain = node.domain }
            if node.docString != proto.docString || proto.hasDocString { proto.docString = node.docString }
            let originalNode = match.map {
                (
                    proto: $0.0.proto.node[$0.1], ir: $0.0.ir.nodes[$0.1],
                    path: $0.0.path.appending(ONNXField.Graph.node, $0.1)
                )
            }
            var attributes: [Onnx_AttributeProto] = []
            for (name, value) in node.attributes {
                var originalAttribute: (proto: Onnx_AttributeProto, ir: Attribute, path: ProtoPath)?
                if let originalNode, let k = originalNode.proto.attribute.firstIndex(where: { $0.name == name }),
                    k < originalNode.ir.attributes.count
                {
                    originalAttribute = (
                        originalNode.proto.attribute[k], originalNode.ir.attributes[k].value,
                        originalNode.path.appending(ONNXField.Node.attribute, k)
                    )
                }
                attributes.append(try attribute(name: name, value: value, original: originalAttribute, node: node))
            }
            proto.attribute = attributes
            out.append(proto)
        }
        return out
    }

    /// What identifies a node across the rewrite: its operator and outputs (names may be empty).
    static func nodeKey(_ node: Node) -> String {
        node.opType + "\u{1}" + node.outputs.joined(separator: "\u{0}")
    }
}
