import Foundation
import LetheCore
import LetheIR

/// Writes a model by building its `ModelProto`: from the original message where one corresponds
/// (so fields the IR does not cover survive), from the IR alone elsewhere.
struct ProtoRebuild {
    /// IR version and default-domain opset for models that declare none (ONNX 1.16 / opset 21,
    /// which current onnxruntime loads).
    static let defaultIRVersion: Int64 = 10
    static var defaultOpset: Onnx_OperatorSetIdProto {
        var opset = Onnx_OperatorSetIdProto()
        opset.domain = ""
        opset.version = 21
        return opset
    }

    let source: ONNXSource?
    /// Initializers of at least this many bytes go to the data file; nil keeps original placement.
    let threshold: Int?
    let dataLocation: String
    /// Filled as tensors are placed; written once the model message is complete.
    var sink = ExternalSink()
    /// Tensors whose bytes the proto refers to without copying; they must outlive serialization.
    var keepAlive: [Tensor] = []

    init(source: ONNXSource?, threshold: Int?, dataLocation: String) {
        self.source = source
        self.threshold = threshold
        self.dataLocation = dataLocation
    }

    /// The model message: the original's, with every field the IR covers set from `model`.
    mutating func buildModel(_ model: Model) throws -> Onnx_ModelProto {
        var proto = source?.proto ?? Onnx_ModelProto()
        proto.irVersion = Int64(model.irVersion)
        if source == nil {
            // A model from a weights-only format has no IR version or opsets; ONNX needs both.
            if model.irVersion <= 0 { proto.irVersion = ProtoRebuild.defaultIRVersion }
            if model.opsets.isEmpty { proto.opsetImport = [ProtoRebuild.defaultOpset] }
        }
        if model.producerName != proto.producerName || proto.hasProducerName { proto.producerName = model.producerName }
        if model.producerVersion != proto.producerVersion || proto.hasProducerVersion {
            proto.producerVersion = model.producerVersion
        }
        if model.docString != proto.docString || proto.hasDocString { proto.docString = model.docString }
        let originalOpsets = source?.model.opsets ?? []
        if source != nil || !model.opsets.isEmpty,
            !model.opsets.elementsEqual(originalOpsets, by: { $0.domain == $1.domain && $0.version == $1.version })
        {
            proto.opsetImport = model.opsets.map { opset in
                var entry = Onnx_OperatorSetIdProto()
                entry.domain = opset.domain
                entry.version = Int64(opset.version)
                return entry
            }
        }
        let originalMetadata = source?.model.metadata ?? []
        if !model.metadata.elementsEqual(originalMetadata, by: { $0.key == $1.key && $0.value == $1.value }) {
            proto.metadataProps = model.metadata.map { entry(key: $0.key, value: $0.value) }
        }
        let original = source.map { (proto: $0.proto.graph, ir: $0.model.graph, path: ProtoPath.mainGraph) }
        proto.graph = try buildGraph(model.graph, original: original)
        return proto
    }
}
