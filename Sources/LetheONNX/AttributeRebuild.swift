import Foundation
import LetheIR

/// Node attributes: the original message where the kind is unchanged, a fresh one otherwise;
/// attributes the IR holds only as opaque are copied whole.
extension ProtoRebuild {
    /// The attribute message for `value`, built on `original` when it has the same kind.
    mutating func attribute(
        name: String, value: Attribute,
        original: (proto: Onnx_AttributeProto, ir: Attribute, path: ProtoPath)?,
        node: Node
    ) throws -> Onnx_AttributeProto {
        if case .opaque = value {
            guard let original, case .opaque = original.ir else {
                throw ONNXError.cannotWrite(
                    "attribute '\(name)' of node '\(node.name)' (\(value.kindName)) "
                        + "has no original to copy")
            }
            return try keptAttribute(original.proto, path: original.path)
        }
        let sameKind = original.map { $0.ir.kindName == value.kindName } ?? false
        var proto = sameKind ? original!.proto : Onnx_AttributeProto()
        if !sameKind {
            proto.name = name
            if let original {
                if original.proto.hasDocString { proto.docString = original.proto.docString }
                proto.unknownFields = original.proto.unknownFields
            }
        }
        // Keep `type` absent where an old file left it out and the kind is unchanged.
        if !(sameKind && !proto.hasType) { proto.type = ProtoRebuild.attributeType(value) }
        switch value {
        case .float(let v): proto.f = v
        case .int(let v): proto.i = Int64(v)
        case .string(let v): proto.s = Data(v)
        case .floats(let v): proto.floats = v
        case .ints(let v): proto.ints = v.map { Int64($0) }
        case .strings(let v): proto.strings = v.map { Data($0) }
        case .tensor(let t):
            let o =
                sameKind
                ? original.map { (proto: $0.proto.t, path: $0.path.appending(ONNXField.Attribute.tensor, 0)) } : nil
            proto.t = try tensorProto(t, name: o?.proto.name ?? "", original: o, isInitializer: false)
        case .tensors(let ts):
            var out: [Onnx_TensorProto] = []
            for (m, t) in ts.enumerated() {
                let o =
                    sameKind && m < original!.proto.tensors.count
                    ? (
                        proto: original!.proto.tensors[m],
                        path: original!.path.appending(ONNXField.Attribute.tensors, m)
                    ) : nil
                out.append(try tensorProto(t, name: o?.proto.name ?? "", original: o, isInitializer: false))
            }
            proto.tensors = out
        case .graph(let g):
            var o: OriginalGraph?
            if sameKind, let original, case .graph(let ir) = original.ir {
                o = (original.proto.g, ir, original.path.appending(ONNXField.Attribute.graph, 0))
            }
            proto.g = try buildGraph(g, original: o)
        case .graphs(let gs):
            var out: [Onnx_GraphProto] = []
            for (m, g) in gs.enumerated() {
                var o: OriginalGraph?
                if sameKind, let original, case .graphs(let irs) = original.ir, m < irs.count,
                    m < original.proto.graphs.count
                {
                    o = (original.proto.graphs[m], irs[m], original.path.appending(ONNXField.Attribute.graphs, m))
                }
                out.append(try buildGraph(g, original: o))
            }
            proto.graphs = out
        case .opaque: break
        }
        return proto
    }

    /// The ONNX type tag of an attribute value.
    static func attributeType(_ value: Attribute) -> Onnx_AttributeProto.AttributeType {
        switch value {
        case .float: .float
        case .int: .int
        case .string: .string
        case .tensor: .tensor
        case .graph: .graph
        case .floats: .floats
        case .ints: .ints
        case .strings: .strings
        case .tensors: .tensors
        case .graphs: .graphs
        case .opaque: .undefined
        }
    }

    /// An original attribute copied whole, with the tensor data the scan cut out put back.
    mutating func keptAttribute(_ proto: Onnx_AttributeProto, path: ProtoPath) throws -> Onnx_AttributeProto {
        var copy = proto
        if copy.hasT { copy.t = try keptTensor(copy.t, path: path.appending(ONNXField.Attribute.tensor, 0)) }
        for m in copy.tensors.indices {
            copy.tensors[m] = try keptTensor(copy.tensors[m], path: path.appending(ONNXField.Attribute.tensors, m))
        }
        return copy
    }
}
