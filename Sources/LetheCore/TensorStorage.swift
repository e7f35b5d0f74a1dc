#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Bytes behind a tensor: either memory Lethe allocated, or a slice of a mapped file.
///
/// Allocated storage is 64-byte aligned so kernels can use aligned vector loads. Mapped storage
/// is read-only; writing to a tensor that points into a file copies it first (see `Tensor`).
public final class TensorStorage: @unchecked Sendable {
    public let base: UnsafeRawPointer
    public let count: Int
    private let owner: Owner

    private enum Owner {
        case allocated
        case mapped(MappedFile)
        case empty
    }

    /// Allocates `count` zeroed bytes.
    public convenience init(zeroedByteCount count: Int) {
        self.init(uninitializedByteCount: count)
        if count > 0 {
            UnsafeMutableRawPointer(mutating: base).initializeMemory(as: UInt8.self, repeating: 0, count: count)
        }
    }

    /// Allocates `count` bytes without clearing them; the caller fills every byte.
    public init(uninitializedByteCount count: Int) {
        self.count = count
        if count == 0 {
            base = UnsafeRawPointer(bitPattern: 64)!
            owner = .empty
            return
        }
        base = UnsafeRawPointer(UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 64))
        owner = .allocated
    }

    /// Refers to `range` of a mapped file without copying.
    public init(file: MappedFile, range: Range<Int>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= file.count)
        count = range.count
        if range.isEmpty {
            base = UnsafeRawPointer(bitPattern: 64)!
            owner = .empty
        } else {
            base = file.bytes.baseAddress! + range.lowerBound
            owner = .mapped(file)
        }
    }

    deinit {
        if case .allocated = owner { UnsafeMutableRawPointer(mutating: base).deallocate() }
    }

    /// Whether the bytes are memory Lethe allocated (not a mapped file, not empty).
    public var isAllocated: Bool {
        if case .allocated = owner { return true }
        return false
    }

    /// The file this storage points into, if any.
    public var mappedFile: MappedFile? {
        if case .mapped(let file) = owner { return file }
        return nil
    }

    /// Whether the bytes may be written (mapped files are read-only).
    public var isWritable: Bool {
        switch owner {
        case .allocated, .empty: true
        case .mapped: false
        }
    }

    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// Writable bytes; only for storage that `isWritable`.
    public var mutableBytes: UnsafeMutableRawBufferPointer {
        precondition(isWritable, "mapped tensor storage is read-only")
        return UnsafeMutableRawBufferPointer(start: UnsafeMutableRawPointer(mutating: base), count: count)
    }
}
