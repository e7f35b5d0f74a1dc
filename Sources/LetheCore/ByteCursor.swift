/// Where a byte-level parse failed, and why.
public struct TruncatedError: LetheError {
    public let needed: Int
    public let offset: Int
    public let available: Int
    public let what: String
    public var description: String {
        "truncated: \(what) needs \(needed) bytes at offset \(offset), only \(max(0, available - offset)) remain"
    }
}

/// A bounds-checked reader over untrusted bytes: every read checks the remaining length first.
public struct ByteCursor {
    public let bytes: UnsafeRawBufferPointer
    public var offset: Int

    public init(_ bytes: UnsafeRawBufferPointer, offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    public var remaining: Int { bytes.count - offset }

    public func require(_ count: Int, _ what: String) throws {
        guard count >= 0, offset <= bytes.count, count <= bytes.count - offset else {
            throw TruncatedError(needed: count, offset: offset, available: bytes.count, what: what)
        }
    }

    public mutating func skip(_ count: Int, _ what: String) throws {
        try require(count, what)
        offset += count
    }

    public mutating func read<T: FixedWidthInteger>(_ type: T.Type, _ what: String) throws -> T {
        try require(MemoryLayout<T>.size, what)
        let value = T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
        offset += MemoryLayout<T>.size
        return value
    }

    public mutating func readBytes(_ count: Int, _ what: String) throws -> UnsafeRawBufferPointer {
        try require(count, what)
        let slice = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
        offset += count
        return slice
    }
}
