import Foundation
import LetheCore
import LetheIR

/// Writes a model by building its `ModelProto`: from the original message where one corresponds
/// (so fields the IR does not cover survive), from the IR alone elsewhere.
struct ProtoRebuild {
    /// Headroom for everything but tensor data when judging protobuf's 2 GB limit.
    static let protobufLimit = Int(Int32.max) - (64 << 20)

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
    private(set) var sink = ExternalSink()
    /// Tensors whose bytes the proto refers to without copying; they must outlive serialization.
    private var keepAlive: [Tensor] = []

    init(source: ONNXSource?, threshold: Int?, dataLocation: String) {
        self.source = source
        self.threshold = threshold
        self.dataLocation = dataLocation
    }

    static func write(_ model: Model, to path: String, original: ONNXSource?, overwritesOriginal: Bool,
                      options: ONNXWriteOptions, inlineLimit: Int = protobufLimit) throws {
        var threshold = options.externalDataThreshold
        if inlineBytes(model.graph, original: original, threshold: threshold) > inlineLimit {
            threshold = min(threshold ?? 1024, 1024)
        }
        var builder = ProtoRebuild(source: original, threshold: threshold,
                                   dataLocation: dataFileName(for: path, original: original,
                                                              overwritesOriginal: overwritesOriginal))
        let proto = try builder.buildModel(model)
        let bytes: [UInt8]
        do {
            bytes = try proto.serializedBytes()
        } catch {
            throw ONNXError.cannotWrite("serializing the model failed: \(error)")
        }
        guard bytes.count <= Int(Int32.max) else {
            throw ONNXError.cannotWrite("the model is \(bytes.count) bytes even with its weights as external data")
        }
        var dataWriters: [AtomicFileWriter] = []
        if !builder.sink.entries.isEmpty {
            let writer = try AtomicFileWriter(destination: ONNXFormat.folder(of: path) + "/" + builder.dataLocation)
            try builder.sink.write(to: writer)
            dataWriters.append(writer)
        }
        let modelWriter = try AtomicFileWriter(destination: path)
        try modelWriter.write(bytes)
        try ONNXFormat.commit(data: dataWriters, model: modelWriter)
        withExtendedLifetime(builder) {}
    }

    /// `<model file>.data`, or a variant when that name is a data file the original still needs
    /// (any but an in-place rewrite of the original model itself).
    static func dataFileName(for path: String, original: ONNXSource?, overwritesOriginal: Bool) -> String {
        let base = ONNXFormat.fileName(of: path)
        let folder = ONNXFormat.folder(of: path)
        let inUse = overwritesOriginal ? [] : Set(original?.externalFiles.keys.map { $0 } ?? [])
        var candidate = base + ".data"
        var counter = 1
        while let resolved = ONNXFormat.existingRealPath(folder + "/" + candidate), inUse.contains(resolved) {
            candidate = "\(base).\(counter).data"
            counter += 1
        }
        return candidate
    }

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

    // MARK: Model and graph

    mutating func buildModel(_ model: Model) throws -> Onnx_ModelProto {
        var proto = source?.proto ?? Onnx_ModelProto()
        proto.irVersion = Int64(model.irVersion)
        if source == nil {
            // A model from a weights-only format has no IR version or opsets; ONNX needs both.
            if model.irVersion <= 0 { proto.irVersion = ProtoRebuild.defaultIRVersion }
            if model.opsets.isEmpty { proto.opsetImport = [ProtoRebuild.defaultOpset] }
        }
        if model.producerName != proto.producerName || proto.hasProducerName { proto.producerName = model.producerName }
        if model.producerVersion != proto.producerVersion || proto.hasProducerVersion { proto.producerVersion = model.producerVersion }
        if model.docString != proto.docString || proto.hasDocString { proto.docString = model.docString }
        let originalOpsets = source?.model.opsets ?? []
        if source != nil || !model.opsets.isEmpty, !model.opsets.elementsEqual(originalOpsets, by: { $0.domain == $1.domain && $0.version == $1.version }) {
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

    typealias OriginalGraph = (proto: Onnx_GraphProto, ir: Graph, path: ProtoPath)

    mutating func buildGraph(_ graph: Graph, original: OriginalGraph?) throws -> Onnx_GraphProto {
        var proto = original?.proto ?? Onnx_GraphProto()
        if graph.name != proto.name || proto.hasName { proto.name = graph.name }
        if graph.docString != proto.docString || proto.hasDocString { proto.docString = graph.docString }
        proto.input = valueInfos(graph.inputs, original: original.map { ($0.proto.input, $0.ir.inputs) })
        proto.output = valueInfos(graph.outputs, original: original.map { ($0.proto.output, $0.ir.outputs) })
        proto.valueInfo = valueInfos(graph.valueInfos, original: original.map { ($0.proto.valueInfo, $0.ir.valueInfos) })
        proto.initializer = try initializers(graph, original: original)
        proto.node = try nodes(graph, original: original)
        return proto
    }

    private func valueInfos(_ infos: [ValueInfo],
                            original: ([Onnx_ValueInfoProto], [ValueInfo])?) -> [Onnx_ValueInfoProto] {
        var byName: [String: (Onnx_ValueInfoProto, ValueInfo)] = [:]
        if let (protos, irs) = original {
            for (p, v) in zip(protos, irs) where byName[v.name] == nil { byName[v.name] = (p, v) }
        }
        return infos.map { info in
            if let (p, v) = byName[info.name], v == info { return p }
            return ProtoRebuild.valueInfoProto(info)
        }
    }

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

    private mutating func initializers(_ graph: Graph, original: OriginalGraph?) throws -> [Onnx_TensorProto] {
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
                out.append(try tensorProto(graph.initializers[i].tensor, name: proto.name,
                                           original: (proto, path), isInitializer: true))
            }
        }
        for (i, initializer) in graph.initializers.enumerated() where !emitted.contains(i) {
            out.append(try tensorProto(initializer.tensor, name: initializer.name, original: nil, isInitializer: true))
        }
        return out
    }

    private mutating func nodes(_ graph: Graph, original: OriginalGraph?) throws -> [Onnx_NodeProto] {
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
            let originalNode = match.map { (proto: $0.0.proto.node[$0.1], ir: $0.0.ir.nodes[$0.1],
                                            path: $0.0.path.appending(ONNXField.Graph.node, $0.1)) }
            var attributes: [Onnx_AttributeProto] = []
            for (name, value) in node.attributes {
                var originalAttribute: (proto: Onnx_AttributeProto, ir: Attribute, path: ProtoPath)?
                if let originalNode, let k = originalNode.proto.attribute.firstIndex(where: { $0.name == name }),
                   k < originalNode.ir.attributes.count {
                    originalAttribute = (originalNode.proto.attribute[k], originalNode.ir.attributes[k].value,
                                         originalNode.path.appending(ONNXField.Node.attribute, k))
                }
                attributes.append(try attribute(name: name, value: value, original: originalAttribute, node: node))
            }
            proto.attribute = attributes
            out.append(proto)
        }
        return out
    }

    static func nodeKey(_ node: Node) -> String {
        node.opType + "\u{1}" + node.outputs.joined(separator: "\u{0}")
    }

    // MARK: Attributes

    private mutating func attribute(name: String, value: Attribute,
                                    original: (proto: Onnx_AttributeProto, ir: Attribute, path: ProtoPath)?,
                                    node: Node) throws -> Onnx_AttributeProto {
        if case .opaque = value {
            guard let original, case .opaque = original.ir else {
                throw ONNXError.cannotWrite("attribute '\(name)' of node '\(node.name)' (\(value.kindName)) "
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
            let o = sameKind ? original.map { (proto: $0.proto.t, path: $0.path.appending(ONNXField.Attribute.tensor, 0)) } : nil
            proto.t = try tensorProto(t, name: o?.proto.name ?? "", original: o, isInitializer: false)
        case .tensors(let ts):
            var out: [Onnx_TensorProto] = []
            for (m, t) in ts.enumerated() {
                let o = sameKind && m < original!.proto.tensors.count
                    ? (proto: original!.proto.tensors[m], path: original!.path.appending(ONNXField.Attribute.tensors, m)) : nil
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
                if sameKind, let original, case .graphs(let irs) = original.ir, m < irs.count, m < original.proto.graphs.count {
                    o = (original.proto.graphs[m], irs[m], original.path.appending(ONNXField.Attribute.graphs, m))
                }
                out.append(try buildGraph(g, original: o))
            }
            proto.graphs = out
        case .opaque: break
        }
        return proto
    }

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
    private mutating func keptAttribute(_ proto: Onnx_AttributeProto, path: ProtoPath) throws -> Onnx_AttributeProto {
        var copy = proto
        if copy.hasT { copy.t = try keptTensor(copy.t, path: path.appending(ONNXField.Attribute.tensor, 0)) }
        for m in copy.tensors.indices { copy.tensors[m] = try keptTensor(copy.tensors[m], path: path.appending(ONNXField.Attribute.tensors, m)) }
        return copy
    }

    // MARK: Tensors

    /// An original tensor the IR does not represent, with its data restored.
    private mutating func keptTensor(_ proto: Onnx_TensorProto, path: ProtoPath) throws -> Onnx_TensorProto {
        var copy = proto
        if let source, let range = source.rawData[path] {
            copy.rawData = dataReferring(to: source.bytes.bytes, range)
        }
        if let slice = source?.carriedExternal[path] {
            setExternal(&copy, offset: sink.append(.file(slice.file, slice.range)), length: slice.range.count)
        }
        return copy
    }

    private mutating func tensorProto(_ tensor: Tensor, name: String, original: (proto: Onnx_TensorProto, path: ProtoPath)?,
                                      isInitializer: Bool) throws -> Onnx_TensorProto {
        let record = original.flatMap { source?.records[$0.path] }
        var wasExternal = false
        var wasTyped = false
        if let record {
            switch record.placement {
            case .external: wasExternal = true
            case .typed: wasTyped = true
            case .raw: break
            }
        }
        let external: Bool
        if let threshold, isInitializer {
            external = tensor.byteCount >= threshold
        } else {
            external = wasExternal
        }
        let unchanged = record.map {
            StructuralEquality.sameLayout(tensor, $0.tensor) && StructuralEquality.unchanged(tensor, $0.tensor)
        } ?? false

        if unchanged, external == wasExternal, var proto = original?.proto {
            if external {
                setExternal(&proto, offset: sink.append(.tensor(tensor)), length: tensor.byteCount)
            } else if case .raw(let range)? = record?.placement, let source {
                proto.rawData = dataReferring(to: source.bytes.bytes, range)
            }
            return proto
        }

        var proto = original?.proto ?? Onnx_TensorProto()
        if original == nil, !name.isEmpty { proto.name = name }
        proto.clearSegment()
        proto.clearRawData()
        proto.floatData = []
        proto.int32Data = []
        proto.int64Data = []
        proto.doubleData = []
        proto.uint64Data = []
        proto.stringData = []
        proto.dims = tensor.shape.map { Int64($0) }
        proto.dataType = ONNXDataType.code(for: tensor.dtype)
        if external {
            proto.externalData.removeAll { $0.key == "checksum" }
            setExternal(&proto, offset: sink.append(.tensor(tensor)), length: tensor.byteCount)
        } else {
            proto.clearDataLocation()
            proto.externalData = []
            if wasTyped {
                TypedData.store(tensor, in: &proto)
            } else {
                keepAlive.append(tensor)
                proto.rawData = tensor.withUnsafeBytes { dataReferring(to: $0, 0..<$0.count) }
            }
        }
        return proto
    }

    private func setExternal(_ proto: inout Onnx_TensorProto, offset: Int, length: Int) {
        proto.dataLocation = .external
        proto.clearRawData()
        let values = [("location", dataLocation), ("offset", String(offset)), ("length", String(length))]
        for (key, value) in values {
            if let index = proto.externalData.firstIndex(where: { $0.key == key }) {
                proto.externalData[index].value = value
            } else {
                proto.externalData.append(entry(key: key, value: value))
            }
        }
    }

    /// A `Data` over bytes that outlive it (a mapped file or a kept tensor), without copying.
    private func dataReferring(to bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Data {
        guard !range.isEmpty, let base = bytes.baseAddress else { return Data() }
        return Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: base + range.lowerBound), count: range.count,
                    deallocator: .none)
    }
}

func entry(key: String, value: String) -> Onnx_StringStringEntryProto {
    var e = Onnx_StringStringEntryProto()
    e.key = key
    e.value = value
    return e
}

/// Tensor data bound for the external data file, at 64-byte aligned offsets so that readers can
/// map it in place.
struct ExternalSink {
    enum Source {
        case tensor(Tensor)
        case file(MappedFile, Range<Int>)

        func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
            switch self {
            case .tensor(let t): try t.withUnsafeBytes(body)
            case .file(let f, let range): try body(UnsafeRawBufferPointer(rebasing: f.bytes[range]))
            }
        }

        /// Whether the bytes lie in a mapped file, whose pages can be dropped once written.
        var isMapped: Bool {
            switch self {
            case .tensor(let t): t.storage.mappedFile != nil
            case .file: true
            }
        }

        var count: Int {
            switch self {
            case .tensor(let t): t.byteCount
            case .file(_, let range): range.count
            }
        }
    }

    static let alignment = 64
    private(set) var entries: [(offset: Int, source: Source)] = []
    private(set) var size = 0

    /// Reserves space for `source`; returns its offset.
    mutating func append(_ source: Source) -> Int {
        let offset = (size + ExternalSink.alignment - 1) / ExternalSink.alignment * ExternalSink.alignment
        entries.append((offset, source))
        size = offset + source.count
        return offset
    }

    func write(to writer: AtomicFileWriter) throws {
        let zeros = [UInt8](repeating: 0, count: ExternalSink.alignment)
        for (offset, source) in entries {
            let pad = offset - writer.bytesWritten
            if pad > 0 { try zeros.withUnsafeBytes { try writer.write(UnsafeRawBufferPointer(rebasing: $0[0..<pad])) } }
            // Piece by piece, dropping mapped pages behind: a multi-GB data file costs one piece of memory.
            try source.withBytes { try TensorStreamer.write($0, to: writer, release: source.isMapped) }
        }
    }
}
