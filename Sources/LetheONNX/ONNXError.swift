import LetheCore

/// What is wrong with an ONNX file, and where.
///
/// Offsets are byte offsets into the model file; tensor names are the `TensorProto.name`, or a
/// description of where an unnamed tensor sits (`node 'Constant_3' attribute 'value'`).
public enum ONNXError: LetheError {
    /// The protobuf wire format itself is broken at `offset`.
    case malformedProtobuf(offset: Int, reason: String)
    /// swift-protobuf refused the message (after Lethe's own scan accepted its framing).
    case protobufDecoding(String)
    /// A singular message field that Lethe must locate appears more than once.
    case duplicateField(message: String, field: Int, offset: Int)
    /// Messages or subgraphs nest deeper than `Limits.maxNestingDepth`.
    case nestingTooDeep(offset: Int, limit: Int)
    case negativeDimension(tensor: String, index: Int, value: Int64)
    case rankTooLarge(tensor: String, rank: Int, limit: Int)
    /// The element count times the element size overflows, or exceeds `Limits`.
    case tensorTooLarge(tensor: String, detail: String)
    /// A data field holds a different amount of data than dims × element size.
    case dataSizeMismatch(tensor: String, field: String, expected: Int, actual: Int)
    /// The tensor declares elements but carries no data field.
    case missingData(tensor: String)
    case unsupportedDataType(tensor: String, code: Int32)
    case segmentedTensor(tensor: String)
    /// A malformed `external_data` entry (missing location, bad number, …).
    case externalData(tensor: String, reason: String)
    /// A `location` that is absolute, uses `..`, or resolves outside the model's folder.
    case unsafeExternalLocation(tensor: String, location: String, reason: String)
    case externalDataOutOfRange(tensor: String, location: String, offset: Int, length: Int, fileSize: Int)
    /// The bytes decode as protobuf but hold no model (an empty file decodes as an empty message).
    case notAModel(reason: String)
    /// Two initializers of one graph share a name (`onnx.checker` refuses this too).
    case duplicateInitializer(name: String)
    /// Something in the IR cannot be written as ONNX.
    case cannotWrite(String)

    private func unit(_ field: String) -> String {
        field == "raw_data" || field.hasPrefix("external") ? "bytes" : "values"
    }

    public var description: String {
        switch self {
        case .malformedProtobuf(let offset, let reason):
            "malformed protobuf at offset \(offset): \(reason)"
        case .protobufDecoding(let reason):
            "protobuf decoding failed: \(reason)"
        case .duplicateField(let message, let field, let offset):
            "\(message) field \(field) appears more than once (second at offset \(offset))"
        case .nestingTooDeep(let offset, let limit):
            "messages nest deeper than \(limit) levels at offset \(offset)"
        case .negativeDimension(let tensor, let index, let value):
            "tensor '\(tensor)': dimension \(index) is negative (\(value))"
        case .rankTooLarge(let tensor, let rank, let limit):
            "tensor '\(tensor)': rank \(rank) exceeds the limit of \(limit)"
        case .tensorTooLarge(let tensor, let detail):
            "tensor '\(tensor)': \(detail)"
        case .dataSizeMismatch(let tensor, let field, let expected, let actual):
            "tensor '\(tensor)': \(field) holds \(actual) \(unit(field)) but the dims need \(expected)"
        case .missingData(let tensor):
            "tensor '\(tensor)' declares elements but has no data"
        case .unsupportedDataType(let tensor, let code):
            "tensor '\(tensor)': data_type \(code) is not supported"
        case .segmentedTensor(let tensor):
            "tensor '\(tensor)' is a segment of a larger tensor, which Lethe does not support"
        case .externalData(let tensor, let reason):
            "tensor '\(tensor)': external_data \(reason)"
        case .unsafeExternalLocation(let tensor, let location, let reason):
            "tensor '\(tensor)': external data location '\(location)' refused: \(reason)"
        case .externalDataOutOfRange(let tensor, let location, let offset, let length, let fileSize):
            "tensor '\(tensor)': external data \(offset)+\(length) lies beyond the end of '\(location)' (\(fileSize) bytes)"
        case .notAModel(let reason):
            "not an ONNX model: \(reason)"
        case .duplicateInitializer(let name):
            "initializer name '\(name)' appears more than once in one graph"
        case .cannotWrite(let reason):
            "cannot write ONNX: \(reason)"
        }
    }
}
