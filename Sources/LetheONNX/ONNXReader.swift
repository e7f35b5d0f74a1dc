import Foundation
import LetheCore
import LetheIR
import SwiftProtobuf

/// Reads and writes ONNX models.
public enum ONNXFormat {
    /// Reads the model at `path`; external data is resolved relative to its folder and mapped,
    /// not copied.
    public static func read(path: String, limits: Limits = .default) throws -> ONNXFile {
        try FileError.wrapping(path) {
            let file = try MappedFile(path: path)
            return try ONNXReader(source: .mapped(file), path: path, baseFolder: folder(of: path), limits: limits)
                .read()
        }
    }

    /// Reads a model from memory (the bytes are copied). External data needs `baseFolder`.
    public static func read(
        bytes: UnsafeRawBufferPointer, path: String, baseFolder: String?,
        limits: Limits = .default
    ) throws -> ONNXFile {
        try FileError.wrapping(path) {
            let owned = TensorStorage(uninitializedByteCount: bytes.count)
            if bytes.count > 0 { owned.mutableBytes.copyMemory(from: bytes) }
            return try ONNXReader(source: .owned(owned), path: path, baseFolder: baseFolder, limits: limits).read()
        }
    }

    static func folder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let folder = String(path[..<slash])
        return folder.isEmpty ? "/" : folder
    }
}

/// Turns the bytes of one model file into the IR.
struct ONNXReader {
    let source: SourceBytes
    let path: String
    let baseFolder: String?
    let limits: Limits
    private var scan = WireScan()
    private var records: [ProtoPath: TensorRecord] = [:]
    private var initializerIndices: [ProtoPath: [Int]] = [:]
    private var externalFiles: [String: MappedFile] = [:]
    private var carried: [String] = []
    private var carriedExternal: [ProtoPath: ExternalSlice] = [:]
    private var resolvedBase: String?

    init(source: SourceBytes, path: String, baseFolder: String?, limits: Limits) {
        self.source = source
        self.path = path
        self.baseFolder = baseFolder
        self.limits = limits
    }

    consuming func read() throws -> ONNXFile {
        let bytes = source.bytes
        scan = try WireScanner.scan(bytes, depthLimit: limits.maxNestingDepth)
        var options = BinaryDecodingOptions()
        options.messageDepthLimit = limits.maxNestingDepth
        let proto: Onnx_ModelProto
        do {
            proto = try Onnx_ModelProto(
                serializedBytes: scan.stripped, extensions: nil, partial: true, options: options)
        } catch {
            throw ONNXError.protobufDecoding(String(describing: error))
        }
        scan.stripped = []
        guard proto.hasGraph else {
            throw ONNXError.notAModel(reason: bytes.isEmpty ? "the file is empty" : "ModelProto has no graph (field 7)")
        }
        let rawData = scan.rawData
        let graph = try mapGraph(proto.graph, path: .mainGraph, depth: 1)
        let model = Model(
            graph: graph,
            metadata: proto.metadataProps.map { (key: $0.key, value: $0.value) },
            producerName: proto.producerName,
            producerVersion: proto.producerVersion,
            irVersion: Int(proto.irVersion),
            opsets: proto.opsetImport.map { (domain: $0.domain, version: Int($0.version)) },
            docString: proto.docString)
        let original = ONNXSource(
            bytes: source, baseFolder: baseFolder, proto: proto, model: model, records: records, rawData: rawData,
            carriedExternal: carriedExternal,
            initializerIndices: initializerIndices, externalFiles: externalFiles)
        return ONNXFile(path: path, model: model, carriedInitializers: carried, source: original)
    }

    // MARK: Graph structure

    private mutating func mapGraph(_ proto: Onnx_GraphProto, path: ProtoPath, depth: Int) throws -> Graph {
        guard depth <= limits.maxNestingDepth else {
            throw ONNXError.nestingTooDeep(offset: 0, limit: limits.maxNestingDepth)
        }
        var initializers: [Initializer] = []
        var indices: [Int] = []
        var seen = Set<String>()
        for tensor in proto.initializer where !tensor.name.isEmpty {
            guard seen.insert(tensor.name).inserted else { throw ONNXError.duplicateInitializer(name: tensor.name) }
        }
        for (index, tensor) in proto.initializer.enumerated() {
            let label = tensor.name.isEmpty ? "initializer \(index)" : tensor.name
            if let decoded = try decodeTensor(
                tensor, path: path.appending(ONNXField.Graph.initializer, index), label: label)
            {
                initializers.append(Initializer(name: tensor.name, tensor: decoded))
                indices.append(index)
            } else {
                carried.append(tensor.name)
            }
        }
        initializerIndices[path] = indices
        var nodes: [Node] = []
        nodes.reserveCapacity(proto.node.count)
        for (index, node) in proto.node.enumerated() {
            nodes.append(
                try mapNode(node, path: path.appending(ONNXField.Graph.node, index), index: index, depth: depth))
        }
        return Graph(
            name: proto.name, nodes: nodes,
            inputs: try proto.input.map(mapValueInfo),
            outputs: try proto.output.map(mapValueInfo),
            valueInfos: try proto.valueInfo.map(mapValueInfo),
            initializers: initializers, docString: proto.docString)
    }

    private mutating func mapNode(_ proto: Onnx_NodeProto, path: ProtoPath, index: Int, depth: Int) throws -> Node {
        let label = proto.name.isEmpty ? "\(proto.opType) node \(index)" : proto.name
        var attributes: [(name: String, value: Attribute)] = []
        attributes.reserveCapacity(proto.attribute.count)
        for (k, attribute) in proto.attribute.enumerated() {
            let value = try mapAttribute(
                attribute, path: path.appending(ONNXField.Node.attribute, k), node: label, depth: depth)
            attributes.append((name: attribute.name, value: value))
        }
        return Node(
            name: proto.name, opType: proto.opType, domain: proto.domain, inputs: proto.input,
            outputs: proto.output, attributes: attributes, docString: proto.docString)
    }

    private mutating func mapAttribute(
        _ proto: Onnx_AttributeProto, path: ProtoPath, node: String,
        depth: Int
    ) throws -> Attribute {
        let where_ = "node '\(node)' attribute '\(proto.name)'"
        switch ONNXReader.kind(of: proto) {
        case .float: return .float(proto.f)
        case .int: return .int(Int(proto.i))
        case .string: return .string([UInt8](proto.s))
        case .floats: return .floats(proto.floats)
        case .ints: return .ints(proto.ints.map { Int($0) })
        case .strings: return .strings(proto.strings.map { [UInt8]($0) })
        case .tensor:
            let label = proto.t.name.isEmpty ? where_ : proto.t.name
            guard
                let tensor = try decodeTensor(
                    proto.t, path: path.appending(ONNXField.Attribute.tensor, 0), label: label)
            else {
                return .opaque(kind: "TENSOR(\(ONNXDataType.name(of: proto.t.dataType)))")
            }
            return .tensor(tensor)
        case .tensors:
            var tensors: [Tensor] = []
            var carriedOne = false
            for (m, t) in proto.tensors.enumerated() {
                let label = t.name.isEmpty ? "\(where_) tensor \(m)" : t.name
                if let tensor = try decodeTensor(t, path: path.appending(ONNXField.Attribute.tensors, m), label: label)
                {
                    tensors.append(tensor)
                } else {
                    carriedOne = true
                }
            }
            return carriedOne ? .opaque(kind: "TENSORS") : .tensors(tensors)
        case .graph:
            return .graph(try mapGraph(proto.g, path: path.appending(ONNXField.Attribute.graph, 0), depth: depth + 1))
        case .graphs:
            var graphs: [Graph] = []
            for (m, g) in proto.graphs.enumerated() {
                graphs.append(try mapGraph(g, path: path.appending(ONNXField.Attribute.graphs, m), depth: depth + 1))
            }
            return .graphs(graphs)
        case .sparseTensor: return .opaque(kind: "SPARSE_TENSOR")
        case .sparseTensors: return .opaque(kind: "SPARSE_TENSORS")
        case .typeProto: return .opaque(kind: "TYPE_PROTO")
        case .typeProtos: return .opaque(kind: "TYPE_PROTOS")
        case .undefined: return .opaque(kind: proto.refAttrName.isEmpty ? "UNDEFINED" : "REF(\(proto.refAttrName))")
        }
    }

    /// The attribute's kind: its `type`, or for old files without one, the field that is set.
    static func kind(of proto: Onnx_AttributeProto) -> Onnx_AttributeProto.AttributeType {
        if proto.hasType, proto.type != .undefined { return proto.type }
        if !proto.refAttrName.isEmpty { return .undefined }
        if proto.hasF { return .float }
        if proto.hasI { return .int }
        if proto.hasS { return .string }
        if proto.hasT { return .tensor }
        if proto.hasG { return .graph }
        if proto.hasSparseTensor { return .sparseTensor }
        if proto.hasTp { return .typeProto }
        if !proto.floats.isEmpty { return .floats }
        if !proto.ints.isEmpty { return .ints }
        if !proto.strings.isEmpty { return .strings }
        if !proto.tensors.isEmpty { return .tensors }
        if !proto.graphs.isEmpty { return .graphs }
        if !proto.sparseTensors.isEmpty { return .sparseTensors }
        if !proto.typeProtos.isEmpty { return .typeProtos }
        return .undefined
    }

    private func mapValueInfo(_ proto: Onnx_ValueInfoProto) throws -> ValueInfo {
        guard case .tensorType(let type)? = proto.type.value else {
            return ValueInfo(name: proto.name, docString: proto.docString)
        }
        var shape: [LetheIR.Dimension]?
        if type.hasShape {
            guard type.shape.dim.count <= limits.maxRank else {
                throw ONNXError.rankTooLarge(tensor: proto.name, rank: type.shape.dim.count, limit: limits.maxRank)
            }
            shape = type.shape.dim.map { dim in
                switch dim.value {
                case .dimValue(let n)?: n >= 0 && n <= Int64(Int.max) ? .fixed(Int(n)) : .unknown
                case .dimParam(let name)?: .symbolic(name)
                case nil: .unknown
                }
            }
        }
        return ValueInfo(
            name: proto.name, dtype: ONNXDataType.dtype(onnx: type.elemType), shape: shape,
            docString: proto.docString)
    }

    // MARK: Tensors

    /// Decodes a graph tensor; nil for element types Lethe carries without representing.
    private mutating func decodeTensor(_ proto: Onnx_TensorProto, path: ProtoPath, label: String) throws -> Tensor? {
        guard let layout = try TensorLayout(proto, label: label, limits: limits) else {
            if proto.hasDataLocation, proto.dataLocation == .external {
                carriedExternal[path] = try externalSlice(proto, label: label, byteCount: nil)
            }
            return nil
        }
        let (dtype, shape, elements, byteCount) = (layout.dtype, layout.shape, layout.elements, layout.byteCount)
        let placement: TensorPlacement
        let tensor: Tensor
        if proto.hasDataLocation, proto.dataLocation == .external {
            let slice = try externalSlice(proto, label: label, byteCount: byteCount)
            placement = .external(slice)
            tensor = Tensor(dtype: dtype, shape: shape, storage: TensorStorage(file: slice.file, range: slice.range))
        } else if proto.hasRawData {
            let range: Range<Int>
            if let scanned = scan.rawData[path] {
                range = scanned
            } else {
                throw ONNXError.protobufDecoding("raw_data of tensor '\(label)' was not located by the wire scan")
            }
            guard range.count == byteCount else {
                throw ONNXError.dataSizeMismatch(
                    tensor: label, field: "raw_data", expected: byteCount, actual: range.count)
            }
            placement = .raw(range)
            tensor = Tensor(dtype: dtype, shape: shape, storage: source.storage(range, dtype: dtype))
        } else {
            tensor = try TypedData.decode(proto, dtype: dtype, shape: shape, elements: elements, label: label)
            placement = .typed(scan.typedPayloads[path])
        }
        records[path] = TensorRecord(placement: placement, tensor: tensor)
        return tensor
    }

    /// Validates an external reference and maps its file. `byteCount` is nil for carried kinds,
    /// whose extent is the declared length or the rest of the file.
    private mutating func externalSlice(
        _ proto: Onnx_TensorProto, label: String,
        byteCount: Int?
    ) throws -> ExternalSlice {
        var location: String?
        var offset = 0
        var length: Int?
        for entry in proto.externalData {
            switch entry.key {
            case "location": location = entry.value
            case "offset":
                guard let value = Int(entry.value), value >= 0 else {
                    throw ONNXError.externalData(
                        tensor: label, reason: "offset '\(entry.value)' is not a non-negative integer")
                }
                offset = value
            case "length":
                guard let value = Int(entry.value), value >= 0 else {
                    throw ONNXError.externalData(
                        tensor: label, reason: "length '\(entry.value)' is not a non-negative integer")
                }
                length = value
            default: break
            }
        }
        guard let location, !location.isEmpty else {
            throw ONNXError.externalData(tensor: label, reason: "has no location")
        }
        if let length, let byteCount, length != byteCount {
            throw ONNXError.dataSizeMismatch(
                tensor: label, field: "external data length", expected: byteCount, actual: length)
        }
        let resolved = try resolveExternal(location, tensor: label)
        let file: MappedFile
        if let cached = externalFiles[resolved] {
            file = cached
        } else {
            file = try MappedFile(path: resolved)
            externalFiles[resolved] = file
        }
        let extent = byteCount ?? length ?? max(0, file.count - offset)
        let (end, overflow) = offset.addingReportingOverflow(extent)
        guard !overflow, end <= file.count else {
            throw ONNXError.externalDataOutOfRange(
                tensor: label, location: location, offset: offset,
                length: extent, fileSize: file.count)
        }
        return ExternalSlice(location: location, file: file, range: offset..<end)
    }

    /// The real path of `location`, refused unless it stays inside the model's folder.
    private mutating func resolveExternal(_ location: String, tensor: String) throws -> String {
        try ExternalDataPath.refuseUnsafeSpelling(location, tensor: tensor)
        guard let baseFolder else {
            throw ONNXError.externalData(
                tensor: tensor, reason: "refers to '\(location)' but the model's folder is unknown")
        }
        if resolvedBase == nil { resolvedBase = try ExternalDataPath.realPath(baseFolder) }
        return try ExternalDataPath.resolve(location, tensor: tensor, folder: baseFolder, resolvedFolder: resolvedBase!)
    }
}

/// A tensor's dtype and shape, validated against `Limits` before anything is allocated.
struct TensorLayout {
    let dtype: DType
    let shape: [Int]
    let elements: Int
    let byteCount: Int

    /// nil for element types Lethe carries without representing; throws for invalid ones.
    init?(_ proto: Onnx_TensorProto, label: String, limits: Limits) throws {
        guard proto.dims.count <= limits.maxRank else {
            throw ONNXError.rankTooLarge(tensor: label, rank: proto.dims.count, limit: limits.maxRank)
        }
        var shape: [Int] = []
        shape.reserveCapacity(proto.dims.count)
        for (index, dim) in proto.dims.enumerated() {
            guard dim >= 0 else { throw ONNXError.negativeDimension(tensor: label, index: index, value: dim) }
            shape.append(Int(dim))
        }
        if proto.dataType == ONNXDataType.undefined {
            throw ONNXError.unsupportedDataType(tensor: label, code: proto.dataType)
        }
        guard let dtype = ONNXDataType.dtype(onnx: proto.dataType) else {
            if Onnx_TensorProto.DataType(rawValue: Int(proto.dataType)) == nil {
                throw ONNXError.unsupportedDataType(tensor: label, code: proto.dataType)
            }
            return nil
        }
        if proto.hasSegment { throw ONNXError.segmentedTensor(tensor: label) }
        var elements = 1
        for dim in shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: dim)
            guard !overflow else {
                throw ONNXError.tensorTooLarge(tensor: label, detail: "element count of \(shape) overflows")
            }
            elements = product
        }
        guard elements <= limits.maxElements else {
            throw LimitError(what: "element count of tensor '\(label)'", value: elements, limit: limits.maxElements)
        }
        guard let byteCount = Tensor.byteCount(dtype: dtype, shape: shape) else {
            throw ONNXError.tensorTooLarge(tensor: label, detail: "byte size of \(dtype.shortName) \(shape) overflows")
        }
        guard byteCount <= limits.maxTensorBytes else {
            throw LimitError(what: "size of tensor '\(label)'", value: byteCount, limit: limits.maxTensorBytes)
        }
        self.dtype = dtype
        self.shape = shape
        self.elements = elements
        self.byteCount = byteCount
    }
}

extension ONNXFormat {
    /// Decodes one serialized `TensorProto`, such as the `input_0.pb` files of ONNX test data
    /// sets. The bytes are copied; external data and the kinds Lethe does not represent are refused.
    public static func readTensor(
        bytes: UnsafeRawBufferPointer, limits: Limits = .default
    ) throws -> (name: String, tensor: Tensor) {
        var options = BinaryDecodingOptions()
        options.messageDepthLimit = limits.maxNestingDepth
        let proto: Onnx_TensorProto
        do {
            proto = try Onnx_TensorProto(
                serializedBytes: Array(bytes), extensions: nil, partial: true, options: options)
        } catch {
            throw ONNXError.protobufDecoding(String(describing: error))
        }
        let label = proto.name.isEmpty ? "tensor" : proto.name
        guard let layout = try TensorLayout(proto, label: label, limits: limits) else {
            throw ONNXError.unsupportedDataType(tensor: label, code: proto.dataType)
        }
        if proto.hasDataLocation, proto.dataLocation == .external {
            throw ONNXError.externalData(tensor: label, reason: "is not supported for a standalone tensor")
        }
        if proto.hasRawData {
            guard proto.rawData.count == layout.byteCount else {
                throw ONNXError.dataSizeMismatch(
                    tensor: label, field: "raw_data", expected: layout.byteCount,
                    actual: proto.rawData.count)
            }
            let tensor = proto.rawData.withUnsafeBytes {
                Tensor(dtype: layout.dtype, shape: layout.shape, copying: $0)
            }
            return (proto.name, tensor)
        }
        let tensor = try TypedData.decode(
            proto, dtype: layout.dtype, shape: layout.shape, elements: layout.elements,
            label: label)
        return (proto.name, tensor)
    }
}
