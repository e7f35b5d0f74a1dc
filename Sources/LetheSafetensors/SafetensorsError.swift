import LetheCore

/// What is wrong with a safetensors file, and where (byte offsets count from the file's start).
public enum SafetensorsError: LetheError {
    /// The file is shorter than the 8-byte header length.
    case headerTooSmall(fileSize: Int)
    /// The declared header length exceeds the limit (100 MB, as the reference reader).
    case headerTooLarge(length: UInt64, limit: Int)
    /// The declared header runs past the end of the file.
    case headerBeyondFile(length: Int, fileSize: Int)
    case headerNotUTF8
    case invalidJSON(message: String, offset: Int)
    case duplicateKey(String, offset: Int)
    /// A field of a tensor entry (or of `__metadata__`) has the wrong kind or value.
    case invalidEntry(name: String, field: String, reason: String)
    case unknownDType(name: String, dtype: String)
    /// A dtype the format defines but Lethe cannot hold (sub-byte and scale-only floats).
    case unsupportedDType(name: String, dtype: String)
    /// `data_offsets` leave a gap, overlap another tensor, or run backwards.
    case invalidOffsets(name: String, begin: Int, end: Int, expectedBegin: Int)
    /// `data_offsets` span a different byte count than shape × dtype size.
    case sizeMismatch(name: String, expected: Int, actual: Int)
    case shapeOverflow(name: String, shape: [Int])
    /// The tensors do not end exactly at the end of the file.
    case incompleteBuffer(dataEnd: Int, available: Int)
    case invalidMetadata(String)
    /// A model that cannot be written as safetensors.
    case cannotWrite(String)

    public var description: String {
        switch self {
        case .headerTooSmall(let size):
            "safetensors: file of \(size) bytes is shorter than the 8-byte header length"
        case .headerTooLarge(let length, let limit):
            "safetensors: header length \(length) (offset 0) is over the limit of \(limit) bytes"
        case .headerBeyondFile(let length, let size):
            "safetensors: header length \(length) (offset 0) runs past the end of the \(size)-byte file"
        case .headerNotUTF8:
            "safetensors: header (offset 8) is not valid UTF-8"
        case .invalidJSON(let message, let offset):
            "safetensors: invalid header JSON at offset \(offset): \(message)"
        case .duplicateKey(let key, let offset):
            "safetensors: duplicate key \"\(key)\" in the header at offset \(offset)"
        case .invalidEntry(let name, let field, let reason):
            "safetensors: tensor \"\(name)\": field \"\(field)\" \(reason)"
        case .unknownDType(let name, let dtype):
            "safetensors: tensor \"\(name)\": unknown dtype \"\(dtype)\""
        case .unsupportedDType(let name, let dtype):
            "safetensors: tensor \"\(name)\": dtype \(dtype) is not supported by Lethe yet"
        case .invalidOffsets(let name, let begin, let end, let expected):
            "safetensors: tensor \"\(name)\": data_offsets [\(begin), \(end)] "
                + (begin == expected
                    ? "run backwards"
                    : begin < expected
                        ? "overlap the previous tensor (which ends at \(expected))"
                        : "leave a gap after the previous tensor (which ends at \(expected))")
        case .sizeMismatch(let name, let expected, let actual):
            "safetensors: tensor \"\(name)\": data_offsets span \(actual) bytes, shape and dtype need \(expected)"
        case .shapeOverflow(let name, let shape):
            "safetensors: tensor \"\(name)\": byte size of shape \(shape) overflows"
        case .incompleteBuffer(let end, let available):
            "safetensors: tensors end at data offset \(end) but the file holds \(available) data bytes"
        case .invalidMetadata(let reason):
            "safetensors: __metadata__ \(reason)"
        case .cannotWrite(let reason):
            "safetensors: cannot write: \(reason)"
        }
    }
}
