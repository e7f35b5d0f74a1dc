#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole file mapped read-only into memory.
///
/// Tensors read from a checkpoint point into the mapping instead of copying it, so opening a
/// 1 GB file costs page-table entries, not a gigabyte of reads. The mapping lives as long as any
/// tensor that refers to it.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    /// The file's bytes; empty for an empty file.
    public let bytes: UnsafeRawBufferPointer
    private let mappedLength: Int

    /// Maps `path`. Throws a `FileError` naming the file on any failure.
    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError(path: path, underlying: SystemError("open", code: errno)) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw FileError(path: path, underlying: SystemError("stat", code: errno))
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw FileError(path: path, underlying: UsageError("not a regular file"))
        }
        let length = Int(info.st_size)
        if length == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            mappedLength = 0
            return
        }
        let address = mmap(nil, length, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let address, address != MAP_FAILED else {
            throw FileError(path: path, underlying: SystemError("mmap", code: errno))
        }
        bytes = UnsafeRawBufferPointer(start: address, count: length)
        mappedLength = length
    }

    deinit {
        if mappedLength > 0, let base = bytes.baseAddress {
            munmap(UnsafeMutableRawPointer(mutating: base), mappedLength)
        }
    }

    public var count: Int { bytes.count }
}
