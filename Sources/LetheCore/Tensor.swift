#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A dense, row-major, little-endian array of one dtype.
///
/// `Tensor` is a value: copies share storage until one of them is written, and a tensor that
/// points into a memory-mapped file is copied on its first write.
public struct Tensor: @unchecked Sendable {
    public private(set) var dtype: DType
    public private(set) var shape: [Int]
    public private(set) var storage: TensorStorage

    /// Wraps `storage`, which must hold exactly `shape`'s elements of `dtype`.
    public init(dtype: DType, shape: [Int], storage: TensorStorage) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        precondition(
            storage.count == Tensor.byteCount(dtype: dtype, shape: shape) ?? -1,
            "storage of \(storage.count) bytes for \(dtype) \(shape)")
        self.dtype = dtype
        self.shape = shape
        self.storage = storage
    }

    /// A zero-filled tensor.
    public init(zeros dtype: DType, shape: [Int]) {
        let count = Tensor.byteCount(dtype: dtype, shape: shape)!
        self.init(dtype: dtype, shape: shape, storage: TensorStorage(zeroedByteCount: count))
    }

    /// Copies `bytes`, which must hold exactly `shape`'s elements of `dtype`.
    public init(dtype: DType, shape: [Int], copying bytes: UnsafeRawBufferPointer) {
        let storage = TensorStorage(uninitializedByteCount: bytes.count)
        if bytes.count > 0 { storage.mutableBytes.copyMemory(from: bytes) }
        self.init(dtype: dtype, shape: shape, storage: storage)
    }

    /// A tensor holding `values` in `shape`.
    public init<Element: TensorElement>(shape: [Int], values: [Element]) {
        precondition(values.count == Tensor.elementCount(shape), "\(values.count) values for shape \(shape)")
        let storage = TensorStorage(uninitializedByteCount: values.count * MemoryLayout<Element>.stride)
        values.withUnsafeBytes { source in
            if source.count > 0 { storage.mutableBytes.copyMemory(from: source) }
        }
        self.init(dtype: Element.dtype, shape: shape, storage: storage)
    }

    /// A rank-0 tensor.
    public init<Element: TensorElement>(scalar: Element) {
        self.init(shape: [], values: [scalar])
    }

    public var rank: Int { shape.count }
    public var elementCount: Int { Tensor.elementCount(shape) }
    public var byteCount: Int { storage.count }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(storage.bytes)
    }

    /// The storage, when this tensor is its only holder and it is allocated memory: what a buffer
    /// pool may take back and hand to the next tensor of the same byte size.
    public mutating func uniquelyHeldAllocation() -> TensorStorage? {
        guard isKnownUniquelyReferenced(&storage), storage.isAllocated else { return nil }
        return storage
    }

    /// Writable bytes, copying first if the storage is shared or read-only.
    public mutating func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        if !isKnownUniquelyReferenced(&storage) || !storage.isWritable {
            let copy = TensorStorage(uninitializedByteCount: storage.count)
            if storage.count > 0 { copy.mutableBytes.copyMemory(from: storage.bytes) }
            storage = copy
        }
        return try body(storage.mutableBytes)
    }

    /// Whether the bytes start where an element may be read in place. A view into a file written
    /// by another tool (NumPy packs `.npz` members at any offset) may not.
    public var isAligned: Bool { Int(bitPattern: storage.base) % dtype.alignment == 0 }

    /// This tensor, or a copy of it in aligned memory when its bytes are not aligned: what code that
    /// reads elements in place (the runtime's kernels) takes. Copying or writing bytes needs neither.
    public func aligned() -> Tensor {
        guard !isAligned else { return self }
        return Tensor(dtype: dtype, shape: shape, copying: storage.bytes)
    }

    /// `aligned()` for a tensor kept for the rest of a run (a model's weights): when the copy comes
    /// from a mapped file, the file pages it read are dropped from this process, which would otherwise
    /// hold those bytes twice (ViT-B/16: 267 MB of its 330 MB sit unaligned in the file). Reading the
    /// original again (writing the model back) maps them in again from the page cache.
    public func alignedForKeeping() -> Tensor {
        guard !isAligned else { return self }
        let copy = aligned()
        if storage.mappedFile != nil { TensorStreamer.releasePages(storage.bytes) }
        return copy
    }

    /// Typed read access; `Element.dtype` must be this tensor's dtype. Unaligned bytes are read
    /// through an aligned copy.
    public func withUnsafeBufferPointer<Element: TensorElement, R>(
        of type: Element.Type, _ body: (UnsafeBufferPointer<Element>) throws -> R
    ) rethrows -> R {
        precondition(Element.dtype == dtype, "reading \(dtype) tensor as \(Element.dtype)")
        guard isAligned else { return try aligned().withUnsafeBufferPointer(of: type, body) }
        return try storage.bytes.withMemoryRebound(to: Element.self) { try body($0) }
    }

    /// Typed write access; `Element.dtype` must be this tensor's dtype.
    public mutating func withUnsafeMutableBufferPointer<Element: TensorElement, R>(
        of type: Element.Type, _ body: (UnsafeMutableBufferPointer<Element>) throws -> R
    ) rethrows -> R {
        precondition(Element.dtype == dtype, "writing \(dtype) tensor as \(Element.dtype)")
        return try withUnsafeMutableBytes { raw in try raw.withMemoryRebound(to: Element.self) { try body($0) } }
    }

    /// The same bytes seen with another shape of equal element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(Tensor.elementCount(newShape) == elementCount, "reshape \(shape) to \(newShape)")
        return Tensor(dtype: dtype, shape: newShape, storage: storage)
    }

    /// True when dtype, shape and every byte agree.
    public func isBitwiseEqual(to other: Tensor) -> Bool {
        guard dtype == other.dtype, shape == other.shape else { return false }
        if storage === other.storage { return true }
        guard byteCount > 0 else { return true }
        return memcmp(storage.base, other.storage.base, byteCount) == 0
    }

    /// Element count of `shape` (1 for a scalar).
    public static func elementCount(_ shape: [Int]) -> Int {
        shape.reduce(1, *)
    }

    /// Bytes needed for `shape` of `dtype`, or nil when the product overflows or a dimension is negative.
    public static func byteCount(dtype: DType, shape: [Int]) -> Int? {
        var total = dtype.byteSize
        for dim in shape {
            guard dim >= 0 else { return nil }
            let (product, overflow) = total.multipliedReportingOverflow(by: dim)
            guard !overflow else { return nil }
            total = product
        }
        return total
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String { "Tensor(\(dtype.shortName) \(shape))" }
}
