import LetheCore

/// Where one message sits in the tree below `ModelProto`: (field number, occurrence index) steps.
///
/// The occurrence index of a repeated field is the element's index in the decoded repeated field,
/// so the same path names a tensor both in the wire bytes and in the decoded `Onnx_ModelProto`.
struct ProtoPath: Hashable, Sendable, CustomStringConvertible {
    private(set) var steps: [Int32] = []

    static let mainGraph = ProtoPath().appending(ONNXField.Model.graph, 0)

    func appending(_ field: Int, _ index: Int) -> ProtoPath {
        var copy = self
        copy.steps.append(Int32(field))
        copy.steps.append(Int32(truncatingIfNeeded: index))
        return copy
    }

    var description: String {
        stride(from: 0, to: steps.count, by: 2).map { "\(steps[$0])[\(steps[$0 + 1])]" }.joined(separator: ".")
    }
}

/// A typed data field (`float_data`, …) written as exactly one packed record, which can be
/// overwritten in place when the new values encode to the same number of bytes.
struct TypedPayload: Sendable {
    let field: Int
    let range: Range<Int>
}

/// What a scan of the wire bytes found.
struct WireScan: Sendable {
    /// Byte range, in the scanned bytes, of each graph tensor's `raw_data` payload.
    var rawData: [ProtoPath: Range<Int>] = [:]
    /// The single packed typed-data record of each graph tensor that has one.
    var typedPayloads: [ProtoPath: TypedPayload] = [:]
    /// The model with every recorded `raw_data` payload cut to length zero, so that decoding it
    /// with swift-protobuf does not copy the weights.
    var stripped: [UInt8] = []
}

/// A bounds-checked walk over the protobuf wire format of a `ModelProto`.
///
/// It descends only along the fields that lead to graph tensors (model.graph, graph.node,
/// graph.initializer, node.attribute, attribute.t/tensors/g/graphs) and checks the framing of every
/// other field without interpreting it. Nothing it reads is trusted before it is checked against
/// the end of the enclosing message.
struct WireScanner {
    private enum Kind: String {
        case model = "ModelProto", graph = "GraphProto", node = "NodeProto",
            attribute = "AttributeProto", tensor = "TensorProto"
    }

    let bytes: UnsafeRawBufferPointer
    let depthLimit: Int
    private(set) var scan = WireScan()

    init(bytes: UnsafeRawBufferPointer, depthLimit: Int) {
        self.bytes = bytes
        self.depthLimit = depthLimit
    }

    static func scan(_ bytes: UnsafeRawBufferPointer, depthLimit: Int) throws -> WireScan {
        var scanner = WireScanner(bytes: bytes, depthLimit: depthLimit)
        scanner.scan.stripped = try scanner.transform(.model, 0..<bytes.count, path: ProtoPath(), depth: 1)
        return scanner.scan
    }

    private static func child(of kind: Kind, field: Int) -> Kind? {
        switch (kind, field) {
        case (.model, ONNXField.Model.graph): .graph
        case (.graph, ONNXField.Graph.node): .node
        case (.graph, ONNXField.Graph.initializer): .tensor
        case (.node, ONNXField.Node.attribute): .attribute
        case (.attribute, ONNXField.Attribute.tensor), (.attribute, ONNXField.Attribute.tensors): .tensor
        case (.attribute, ONNXField.Attribute.graph), (.attribute, ONNXField.Attribute.graphs): .graph
        default: nil
        }
    }

    /// Singular message fields: protobuf would merge repeats, which would break path identity.
    private static func isSingular(_ kind: Kind, field: Int) -> Bool {
        switch (kind, field) {
        case (.model, ONNXField.Model.graph), (.attribute, ONNXField.Attribute.tensor),
            (.attribute, ONNXField.Attribute.graph):
            true
        default: false
        }
    }

    private static let typedFields: Set<Int> = [
        ONNXField.Tensor.floatData, ONNXField.Tensor.int32Data, ONNXField.Tensor.int64Data,
        ONNXField.Tensor.doubleData, ONNXField.Tensor.uint64Data
    ]

    private mutating func transform(_ kind: Kind, _ range: Range<Int>, path: ProtoPath, depth: Int) throws -> [UInt8] {
        guard depth <= depthLimit else {
            throw ONNXError.nestingTooDeep(offset: range.lowerBound, limit: depthLimit)
        }
        var out: [UInt8] = []
        var counts: [Int: Int] = [:]
        var offset = range.lowerBound
        var copyStart = offset
        var typedRecords = 0
        var typedPacked: TypedPayload?
        var rawSeen = false
        let end = range.upperBound

        func flush(upTo position: Int, into out: inout [UInt8]) {
            if position > copyStart {
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[copyStart..<position]))
            }
        }

        while offset < end {
            let fieldStart = offset
            let key = try readVarint(&offset, end: end)
            let field = Int(truncatingIfNeeded: key >> 3)
            let wireType = Int(key & 7)
            guard key >> 3 >= 1, key >> 3 <= 0x1FFF_FFFF else {
                throw ONNXError.malformedProtobuf(
                    offset: fieldStart, reason: "field number \(key >> 3) in \(kind.rawValue)")
            }
            let occurrence = counts[field, default: 0]
            counts[field] = occurrence + 1
            switch wireType {
            case 0:
                _ = try readVarint(&offset, end: end)
                if kind == .tensor, WireScanner.typedFields.contains(field) { typedRecords += 1 }
            case 1:
                try skip(8, &offset, end: end, what: "fixed64 field \(field)")
                if kind == .tensor, WireScanner.typedFields.contains(field) { typedRecords += 1 }
            case 5:
                try skip(4, &offset, end: end, what: "fixed32 field \(field)")
                if kind == .tensor, WireScanner.typedFields.contains(field) { typedRecords += 1 }
            case 2:
                let lengthStart = offset
                let length = try readVarint(&offset, end: end)
                guard length <= UInt64(end - offset) else {
                    throw ONNXError.malformedProtobuf(
                        offset: lengthStart,
                        reason: "\(kind.rawValue) field \(field) declares \(length) bytes, only \(end - offset) remain")
                }
                let payload = offset..<(offset + Int(length))
                offset = payload.upperBound
                if let childKind = WireScanner.child(of: kind, field: field) {
                    if occurrence > 0, WireScanner.isSingular(kind, field: field) {
                        throw ONNXError.duplicateField(message: kind.rawValue, field: field, offset: fieldStart)
                    }
                    let child = try transform(
                        childKind, payload, path: path.appending(field, occurrence), depth: depth + 1)
                    flush(upTo: lengthStart, into: &out)
                    appendVarint(UInt64(child.count), to: &out)
                    out.append(contentsOf: child)
                    copyStart = offset
                } else if kind == .tensor, field == ONNXField.Tensor.rawData {
                    if rawSeen {
                        throw ONNXError.duplicateField(
                            message: "TensorProto", field: ONNXField.Tensor.rawData, offset: fieldStart)
                    }
                    rawSeen = true
                    scan.rawData[path] = payload
                    flush(upTo: lengthStart, into: &out)
                    out.append(0)
                    copyStart = offset
                } else if kind == .tensor, WireScanner.typedFields.contains(field) {
                    typedRecords += 1
                    typedPacked = TypedPayload(field: field, range: payload)
                }
            case 3, 4:
                throw ONNXError.malformedProtobuf(
                    offset: fieldStart, reason: "group wire type in \(kind.rawValue) field \(field)")
            default:
                throw ONNXError.malformedProtobuf(
                    offset: fieldStart, reason: "wire type \(wireType) in \(kind.rawValue) field \(field)")
            }
        }
        if kind == .tensor, typedRecords == 1, let typedPacked {
            scan.typedPayloads[path] = typedPacked
        }
        if copyStart == range.lowerBound {
            return Array(UnsafeRawBufferPointer(rebasing: bytes[range]))
        }
        flush(upTo: end, into: &out)
        return out
    }

    private func readVarint(_ offset: inout Int, end: Int) throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        let start = offset
        while true {
            guard offset < end else {
                throw ONNXError.malformedProtobuf(offset: start, reason: "truncated varint")
            }
            let byte = bytes[offset]
            offset += 1
            if shift == 63, byte > 1 {
                throw ONNXError.malformedProtobuf(offset: start, reason: "varint longer than 64 bits")
            }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 {
                throw ONNXError.malformedProtobuf(offset: start, reason: "varint longer than 10 bytes")
            }
        }
    }

    private func skip(_ count: Int, _ offset: inout Int, end: Int, what: String) throws {
        guard end - offset >= count else {
            throw ONNXError.malformedProtobuf(offset: offset, reason: "truncated \(what)")
        }
        offset += count
    }
}

/// Appends `value` as a protobuf varint.
func appendVarint(_ value: UInt64, to out: inout [UInt8]) {
    var v = value
    while v >= 0x80 {
        out.append(UInt8(truncatingIfNeeded: v) | 0x80)
        v >>= 7
    }
    out.append(UInt8(v))
}

/// Bytes `value` takes as a varint.
func varintSize(_ value: UInt64) -> Int {
    var v = value
    var n = 1
    while v >= 0x80 { v >>= 7; n += 1 }
    return n
}
