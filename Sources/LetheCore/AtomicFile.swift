#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a file beside its destination and renames it into place only when complete.
///
/// A crash, a kill or an error at any point leaves either no destination or the complete old
/// one; the temporary is removed on `abort()` or when the writer is dropped uncommitted.
public final class AtomicFileWriter {
    public let destination: String
    public let temporaryPath: String
    private var fd: Int32
    private var committed = false
    public private(set) var bytesWritten = 0

    public init(destination: String) throws {
        self.destination = destination
        let slash = destination.lastIndex(of: "/")
        let folder = slash.map { String(destination[..<$0]) } ?? "."
        let name = slash.map { String(destination[destination.index(after: $0)...]) } ?? destination
        var template = Array("\(folder.isEmpty ? "/" : folder)/.\(name).lethe-XXXXXX".utf8CString)
        let created = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard created >= 0 else {
            throw FileError(path: destination, underlying: SystemError("create temporary file", code: errno))
        }
        fd = created
        temporaryPath = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        fchmod(fd, 0o644)
    }

    deinit { if !committed { abort() } }

    /// Appends `bytes`.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw FileError(path: destination, underlying: SystemError("write", code: errno))
            }
            offset += n
        }
        bytesWritten += bytes.count
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Writes `bytes` at `offset` without moving the append position.
    public func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws {
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw FileError(path: destination, underlying: SystemError("write", code: errno))
            }
            done += n
        }
    }

    /// Flushes to disk and renames over the destination.
    public func commit() throws {
        guard !committed else { return }
        guard fsync(fd) == 0 else {
            throw FileError(path: destination, underlying: SystemError("fsync", code: errno))
        }
        close(fd)
        fd = -1
        guard rename(temporaryPath, destination) == 0 else {
            let code = errno
            unlink(temporaryPath)
            committed = true
            throw FileError(path: destination, underlying: SystemError("rename", code: code))
        }
        committed = true
        AtomicFileWriter.syncFolder(of: destination)
    }

    /// Removes the temporary; the destination is untouched.
    public func abort() {
        if fd >= 0 { close(fd); fd = -1 }
        if !committed { unlink(temporaryPath) }
        committed = true
    }

    static func syncFolder(of path: String) {
        let slash = path.lastIndex(of: "/")
        let folder = slash.map { String(path[..<$0]) } ?? "."
        let dirfd = open(folder.isEmpty ? "/" : folder, O_RDONLY | O_DIRECTORY)
        if dirfd >= 0 { fsync(dirfd); close(dirfd) }
    }

    /// Writes the whole file from `produce` and commits, or aborts on any error.
    public static func write(to destination: String, _ produce: (AtomicFileWriter) throws -> Void) throws {
        let writer = try AtomicFileWriter(destination: destination)
        do {
            try produce(writer)
            try writer.commit()
        } catch {
            writer.abort()
            throw error
        }
    }
}
