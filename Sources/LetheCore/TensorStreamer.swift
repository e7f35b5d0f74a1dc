#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Moves large tensor data in 16 MB pieces, dropping each piece of a mapped file from the process
/// once it has been used, so that copying or checking a file of any size keeps resident memory
/// flat (the pages stay in the page cache and come back if touched again).
public enum TensorStreamer {
    public static let chunk = 16 << 20

    /// Hands `bytes` to `body` piece by piece; with `release`, each piece's pages are dropped after.
    public static func forEachChunk(
        _ bytes: UnsafeRawBufferPointer, release: Bool,
        _ body: (UnsafeRawBufferPointer) throws -> Void
    ) rethrows {
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + chunk)
            let piece = UnsafeRawBufferPointer(rebasing: bytes[offset..<end])
            try body(piece)
            if release { releasePages(piece) }
            offset = end
        }
    }

    /// Writes `bytes` piece by piece; with `release`, as `forEachChunk`.
    public static func write(_ bytes: UnsafeRawBufferPointer, to writer: AtomicFileWriter, release: Bool = false) throws
    {
        try forEachChunk(bytes, release: release) { try writer.write($0) }
    }

    /// Writes a tensor's bytes, releasing them as it goes when they lie in a mapped file.
    public static func write(_ tensor: Tensor, to writer: AtomicFileWriter) throws {
        try tensor.withUnsafeBytes { try write($0, to: writer, release: tensor.storage.mappedFile != nil) }
    }

    /// Drops the pages of a read-only file mapping from this process.
    public static func releasePages(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = Int(bitPattern: base) / page * page
        let end = Int(bitPattern: base) + bytes.count
        let length = (end - start + page - 1) / page * page
        _ = madvise(UnsafeMutableRawPointer(bitPattern: start), length, Int32(MADV_DONTNEED))
    }
}
