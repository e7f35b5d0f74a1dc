import LetheCore

/// Reads and writes single NumPy `.npy` arrays.
public enum NPYFormat {
    /// Parses a whole `.npy` file held in `bytes` (versions 1.0, 2.0 and 3.0).
    ///
    /// The result is always C-order and little-endian: big-endian data is swapped and
    /// Fortran-order data transposed. String arrays (`|S n`, `<U n`) become `bytes`/`unicode`
    /// tensors whose last axis is the width. Object (pickled), structured, datetime and
    /// extended-precision arrays are refused. The bytes are copied.
    public static func parse(_ bytes: UnsafeRawBufferPointer, name: String, limits: Limits = .default) throws -> Tensor
    {
        try decode(bytes, name: name, limits: limits, mapped: nil, fileOffset: 0)
    }

    /// Encodes `tensor` as a whole `.npy` file (header and data), exactly as `numpy.save`
    /// writes it: version 1.0 (2.0 for very long headers), C order, little-endian.
    ///
    /// Throws `NPYError.noNumPyDType` for bfloat16 and float8 tensors, which NumPy lacks. A
    /// `bytes`/`unicode` tensor is written as a NumPy string array of its last axis' width.
    public static func encode(_ tensor: Tensor) throws -> [UInt8] {
        var out = try header(for: tensor, name: "array")
        tensor.withUnsafeBytes { out.append(contentsOf: $0) }
        return out
    }

    /// The `.npy` header alone for `tensor`.
    static func header(for tensor: Tensor, name: String) throws -> [UInt8] {
        try NPYHeader.encode(dtype: tensor.dtype, shape: tensor.shape, name: name)
    }

    /// Parses `bytes`; when `mapped` is given (and `bytes` lie in it at `fileOffset`), C-order
    /// little-endian aligned data is returned as a view of the mapping instead of a copy.
    static func decode(
        _ bytes: UnsafeRawBufferPointer, name: String, limits: Limits, mapped: MappedFile?,
        fileOffset: Int
    ) throws -> Tensor {
        let header = try NPYHeader.parse(bytes, name: name, limits: limits)
        let available = bytes.count - header.headerLength
        guard available == header.dataByteCount else {
            throw NPYError.dataSizeMismatch(name: name, expected: header.dataByteCount, actual: available)
        }
        let data = UnsafeRawBufferPointer(rebasing: bytes[header.headerLength...])
        // A view even when NumPy left the data unaligned: copying a member to another file needs
        // only its bytes, and element readers align it themselves (`Tensor.aligned()`).
        if !header.bigEndian && !header.fortranOrder, let mapped {
            let start = fileOffset + header.headerLength
            return Tensor(
                dtype: header.dtype, shape: header.tensorShape,
                storage: TensorStorage(file: mapped, range: start..<(start + data.count)))
        }
        let storage = TensorStorage(uninitializedByteCount: data.count)
        var copied = 0
        TensorStreamer.forEachChunk(data, release: mapped != nil) { piece in
            (storage.mutableBytes.baseAddress! + copied).copyMemory(from: piece.baseAddress!, byteCount: piece.count)
            copied += piece.count
        }
        return normalize(Tensor(dtype: header.dtype, shape: header.tensorShape, storage: storage), header: header)
    }

    /// Swaps big-endian data and transposes Fortran-order data; `tensor` holds the file's bytes.
    static func normalize(_ tensor: Tensor, header: NPYHeader) -> Tensor {
        var tensor = tensor
        if header.bigEndian {
            // Complex parts and UCS-4 code units are swapped one by one.
            let width = tensor.dtype == .complex64 ? 4 : (tensor.dtype == .complex128 ? 8 : tensor.dtype.byteSize)
            tensor.withUnsafeMutableBytes { ByteOrder.swapInPlace($0, width: width) }
        }
        if header.fortranOrder && header.shape.count > 1 {
            // A string is one element of NumPy's shape: its characters stay together.
            let storage = fortranToC(tensor, shape: header.shape, width: header.itemByteCount)
            tensor = Tensor(dtype: tensor.dtype, shape: tensor.shape, storage: storage)
        }
        return tensor
    }

    /// Reorders the bytes of `tensor`, `shape`'s elements of `width` bytes each in Fortran
    /// (column-major) order, into C order.
    private static func fortranToC(_ tensor: Tensor, shape: [Int], width: Int) -> TensorStorage {
        let count = Tensor.elementCount(shape)
        let out = TensorStorage(uninitializedByteCount: tensor.byteCount)
        guard count > 0, width > 0 else { return out }
        // Element (i0, …, in-1) sits at Σ i_k·stride_k in the source, stride_0 = 1.
        var strides = [Int](repeating: 1, count: shape.count)
        for k in 1..<shape.count { strides[k] = strides[k - 1] * shape[k - 1] }
        let last = shape.count - 1
        let inner = shape[last], innerStride = strides[last] * width
        var index = [Int](repeating: 0, count: shape.count)
        tensor.withUnsafeBytes { source in
            let src = source.baseAddress!
            let dst = out.mutableBytes.baseAddress!
            var written = 0
            while written < count {
                var offset = 0
                for k in 0..<last { offset += index[k] * strides[k] }
                let from = src + offset * width
                let to = dst + written * width
                switch width {
                case 1: gather(UInt8.self, from, innerStride, to, inner)
                case 2: gather(UInt16.self, from, innerStride, to, inner)
                case 4: gather(UInt32.self, from, innerStride, to, inner)
                case 8: gather(UInt64.self, from, innerStride, to, inner)
                default:
                    for i in 0..<inner { (to + i * width).copyMemory(from: from + i * innerStride, byteCount: width) }
                }
                written += inner
                var k = last - 1
                while k >= 0 {
                    index[k] += 1
                    if index[k] < shape[k] { break }
                    index[k] = 0
                    k -= 1
                }
            }
        }
        return out
    }
}

/// Copies `count` elements `stride` bytes apart in `source` to consecutive places in `target`.
@inline(__always)
private func gather<T: FixedWidthInteger>(
    _ type: T.Type, _ source: UnsafeRawPointer, _ stride: Int,
    _ target: UnsafeMutableRawPointer, _ count: Int
) {
    for i in 0..<count {
        (target + i * MemoryLayout<T>.size).storeBytes(of: (source + i * stride).loadUnaligned(as: T.self), as: T.self)
    }
}

enum ByteOrder {
    /// Reverses the bytes of every `width`-byte element.
    static func swapInPlace(_ bytes: UnsafeMutableRawBufferPointer, width: Int) {
        guard let base = bytes.baseAddress else { return }
        let count = bytes.count / width
        switch width {
        case 2:
            for i in 0..<count {
                let p = base + i * 2
                p.storeBytes(of: p.loadUnaligned(as: UInt16.self).byteSwapped, as: UInt16.self)
            }
        case 4:
            for i in 0..<count {
                let p = base + i * 4
                p.storeBytes(of: p.loadUnaligned(as: UInt32.self).byteSwapped, as: UInt32.self)
            }
        case 8:
            for i in 0..<count {
                let p = base + i * 8
                p.storeBytes(of: p.loadUnaligned(as: UInt64.self).byteSwapped, as: UInt64.self)
            }
        default:
            break
        }
    }
}
