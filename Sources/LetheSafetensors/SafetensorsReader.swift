import LetheCore
import LetheIR

/// A safetensors file as read: the model (initializers in data-offset order, `__metadata__` in
/// header order) plus what a byte-identical rewrite needs.
public struct SafetensorsFile: Sendable {
    public let path: String
    public var model: Model

    /// One header entry, as the file declared it.
    struct Entry: Sendable {
        var name: String
        var dtypeName: String
        var shape: [Int]
        /// Offsets relative to the start of the data section.
        var begin: Int
        var end: Int
        /// The tensor as read, kept apart from `model` (which the caller may change).
        var tensor: Tensor
    }

    /// Entries in data-offset order.
    let entries: [Entry]
    /// The header exactly as stored (8-byte length plus JSON and padding).
    let headerLength: Int
    /// `__metadata__` as read.
    let metadata: [(key: String, value: String)]
    /// The whole file: a view of the mapping, or a copy for `read(bytes:)`.
    let source: TensorStorage

    var dataStart: Int { 8 + headerLength }
}

/// Reads and writes safetensors checkpoints (https://github.com/huggingface/safetensors).
public enum SafetensorsFormat {
    /// Maps `path` and reads it; tensors point into the mapping.
    public static func read(path: String, limits: Limits = .default) throws -> SafetensorsFile {
        try FileError.wrapping(path) {
            let file = try MappedFile(path: path)
            let source = TensorStorage(file: file, range: 0..<file.count)
            return try parse(source: source, mapped: file, path: path, limits: limits)
        }
    }

    /// Reads a file held in memory (tests and fuzzing); the bytes are copied.
    public static func read(
        bytes: UnsafeRawBufferPointer, path: String, limits: Limits = .default
    ) throws
        -> SafetensorsFile
    {
        try FileError.wrapping(path) {
            let source = TensorStorage(uninitializedByteCount: bytes.count)
            if bytes.count > 0 { source.mutableBytes.copyMemory(from: bytes) }
            return try parse(source: source, mapped: nil, path: path, limits: limits)
        }
    }

    private struct Declared {
        var name: String
        var dtypeName: String
        var dtype: DType
        var shape: [Int]
        var begin: Int
        var end: Int
        var order: Int
    }

    private static func parse(
        source: TensorStorage, mapped: MappedFile?, path: String, limits: Limits
    ) throws
        -> SafetensorsFile
    {
        let bytes = source.bytes
        guard bytes.count >= 8 else { throw SafetensorsError.headerTooSmall(fileSize: bytes.count) }
        let declaredLength = UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self))
        guard declaredLength <= UInt64(limits.maxSafetensorsHeader) else {
            throw SafetensorsError.headerTooLarge(length: declaredLength, limit: limits.maxSafetensorsHeader)
        }
        let headerLength = Int(declaredLength)
        guard headerLength <= bytes.count - 8 else {
            throw SafetensorsError.headerBeyondFile(length: headerLength, fileSize: bytes.count)
        }
        let headerBytes = UnsafeRawBufferPointer(rebasing: bytes[8..<(8 + headerLength)])
        guard String(validating: headerBytes, as: UTF8.self) != nil else { throw SafetensorsError.headerNotUTF8 }
        guard
            case .object(let members) = try HeaderJSONParser.parse(
                headerBytes, baseOffset: 8,
                maxDepth: limits.maxNestingDepth)
        else {
            throw SafetensorsError.invalidJSON(message: "the header is not a JSON object", offset: 8)
        }

        var metadata: [(key: String, value: String)] = []
        var declared: [Declared] = []
        declared.reserveCapacity(members.count)
        for member in members {
            let key = member.key, value = member.value
            if key == "__metadata__" {
                metadata = try parseMetadata(value)
            } else {
                declared.append(try parseEntry(name: key, value, order: declared.count, limits: limits))
            }
        }

        // The reference orders entries by offsets; ties (empty tensors) keep header order.
        declared.sort { ($0.begin, $0.end, $0.order) < ($1.begin, $1.end, $1.order) }
        let dataStart = 8 + headerLength
        let available = bytes.count - dataStart
        var expectedBegin = 0
        for entry in declared {
            guard entry.begin == expectedBegin, entry.end >= entry.begin else {
                throw SafetensorsError.invalidOffsets(
                    name: entry.name, begin: entry.begin, end: entry.end,
                    expectedBegin: expectedBegin)
            }
            guard let size = Tensor.byteCount(dtype: entry.dtype, shape: entry.shape) else {
                throw SafetensorsError.shapeOverflow(name: entry.name, shape: entry.shape)
            }
            guard size == entry.end - entry.begin else {
                throw SafetensorsError.sizeMismatch(name: entry.name, expected: size, actual: entry.end - entry.begin)
            }
            guard size <= limits.maxTensorBytes else {
                throw LimitError(what: "tensor \"\(entry.name)\" byte size", value: size, limit: limits.maxTensorBytes)
            }
            let elements = size / entry.dtype.byteSize
            guard elements <= limits.maxElements else {
                throw LimitError(
                    what: "tensor \"\(entry.name)\" element count", value: elements,
                    limit: limits.maxElements)
            }
            expectedBegin = entry.end
        }
        guard expectedBegin == available else {
            throw SafetensorsError.incompleteBuffer(dataEnd: expectedBegin, available: available)
        }

        var entries: [SafetensorsFile.Entry] = []
        var initializers: [Initializer] = []
        entries.reserveCapacity(declared.count)
        initializers.reserveCapacity(declared.count)
        for entry in declared {
            let range = (dataStart + entry.begin)..<(dataStart + entry.end)
            let tensor = makeTensor(
                dtype: entry.dtype, shape: entry.shape, source: source, mapped: mapped,
                range: range)
            entries.append(
                .init(
                    name: entry.name, dtypeName: entry.dtypeName, shape: entry.shape,
                    begin: entry.begin, end: entry.end, tensor: tensor))
            initializers.append(Initializer(name: entry.name, tensor: tensor))
        }
        let model = Model(graph: Graph(initializers: initializers), metadata: metadata)
        return SafetensorsFile(
            path: path, model: model, entries: entries, headerLength: headerLength,
            metadata: metadata, source: source)
    }

    /// A view of the mapping (element readers align it themselves, `Tensor.aligned()`), or a copy
    /// when the bytes are not in a mapped file.
    private static func makeTensor(
        dtype: DType, shape: [Int], source: TensorStorage, mapped: MappedFile?,
        range: Range<Int>
    ) -> Tensor {
        if let mapped {
            return Tensor(dtype: dtype, shape: shape, storage: TensorStorage(file: mapped, range: range))
        }
        return Tensor(
            dtype: dtype, shape: shape,
            copying: UnsafeRawBufferPointer(rebasing: source.bytes[range]))
    }

    private static func parseMetadata(_ value: HeaderJSON) throws -> [(key: String, value: String)] {
        switch value {
        case .null:
            return []
        case .object(let members):
            return try members.map { member in
                let key = member.key, value = member.value
                guard case .string(let text) = value else {
                    throw SafetensorsError.invalidMetadata("value of \"\(key)\" is a \(value.kindName), not a string")
                }
                return (key, text)
            }
        default:
            throw SafetensorsError.invalidMetadata("is a \(value.kindName), not an object of strings")
        }
    }

    private static func parseEntry(name: String, _ value: HeaderJSON, order: Int, limits: Limits) throws -> Declared {
        guard case .object(let fields) = value else {
            throw SafetensorsError.invalidEntry(name: name, field: "", reason: "is a \(value.kindName), not an object")
        }
        var dtypeName: String?
        var shape: [Int]?
        var offsets: [Int]?
        for member in fields {
            let key = member.key, field = member.value
            switch key {
            case "dtype":
                guard case .string(let text) = field else {
                    throw SafetensorsError.invalidEntry(name: name, field: key, reason: "is not a string")
                }
                dtypeName = text
            case "shape":
                shape = try integers(field, name: name, field: key)
                if let shape, shape.count > limits.maxRank {
                    throw LimitError(what: "rank of tensor \"\(name)\"", value: shape.count, limit: limits.maxRank)
                }
            case "data_offsets":
                let pair = try integers(field, name: name, field: key)
                guard pair.count == 2 else {
                    throw SafetensorsError.invalidEntry(
                        name: name, field: key,
                        reason: "has \(pair.count) values, not 2")
                }
                offsets = pair
            default:
                continue // the reference reader ignores unknown fields too
            }
        }
        guard let dtypeName else {
            throw SafetensorsError.invalidEntry(name: name, field: "dtype", reason: "is missing")
        }
        guard let shape else { throw SafetensorsError.invalidEntry(name: name, field: "shape", reason: "is missing") }
        guard let offsets else {
            throw SafetensorsError.invalidEntry(name: name, field: "data_offsets", reason: "is missing")
        }
        guard let dtype = dtype(named: dtypeName) else {
            if SafetensorsDTypeTable.unsupported.contains(dtypeName) {
                throw SafetensorsError.unsupportedDType(name: name, dtype: dtypeName)
            }
            throw SafetensorsError.unknownDType(name: name, dtype: dtypeName)
        }
        return Declared(
            name: name, dtypeName: dtypeName, dtype: dtype, shape: shape, begin: offsets[0],
            end: offsets[1], order: order)
    }

    /// Non-negative integers that fit an `Int`, as the reference's `usize` fields.
    private static func integers(_ value: HeaderJSON, name: String, field: String) throws -> [Int] {
        guard case .array(let elements) = value else {
            throw SafetensorsError.invalidEntry(
                name: name, field: field, reason: "is a \(value.kindName), not an array")
        }
        return try elements.map { element in
            guard case .number(let text) = element else {
                throw SafetensorsError.invalidEntry(
                    name: name, field: field,
                    reason: "holds a \(element.kindName), not an integer")
            }
            guard let number = Int(text), number >= 0 else {
                throw SafetensorsError.invalidEntry(
                    name: name, field: field,
                    reason: "holds \(text), not a non-negative integer below 2^63")
            }
            return number
        }
    }
}

extension SafetensorsFile {
    /// A header entry as the file declares it (for `inspect`).
    public struct EntryInfo: Sendable {
        public let name: String
        /// The safetensors dtype name (`F32`, `BF16`, …).
        public let dtype: String
        public let shape: [Int]
        /// Byte offsets in the file (not relative to the data section).
        public let fileRange: Range<Int>
    }

    /// Entries in data-offset order, as read.
    public var entryInfo: [EntryInfo] {
        entries.map {
            EntryInfo(
                name: $0.name, dtype: $0.dtypeName, shape: $0.shape,
                fileRange: (dataStart + $0.begin)..<(dataStart + $0.end))
        }
    }

    /// Bytes of the JSON header (with its padding), not counting the 8-byte length.
    public var headerByteCount: Int { headerLength }
}
