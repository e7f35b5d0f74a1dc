import LetheCore

/// A bare `.npy` file as read: its one array, plus the original bytes, so that rewriting the array
/// unchanged gives back the same file (even a big-endian or Fortran-order one).
public struct NPYFile: Sendable {
    public let path: String
    /// The array, C-order and little-endian (a view of the mapping when the file allows it).
    public let tensor: Tensor
    /// The whole file (a view of the mapping).
    let source: TensorStorage

    /// The name a `.npy` file's array goes by, since the format stores none: the file name
    /// without its `.npy` extension (`weights/fc.bias.npy` → `fc.bias`), or `array` if that is empty.
    public static func arrayName(forPath path: String) -> String {
        var name = Substring(path.split(separator: "/", omittingEmptySubsequences: false).last ?? "")
        if name.lowercased().hasSuffix(".npy") { name = name.dropLast(4) }
        return name.isEmpty ? "array" : String(name)
    }
}

extension NPYFormat {
    /// Maps `path` and reads its array; C-order little-endian aligned data stays in the mapping.
    public static func read(path: String, limits: Limits = .default) throws -> NPYFile {
        try FileError.wrapping(path) {
            let file = try MappedFile(path: path)
            let source = TensorStorage(file: file, range: 0..<file.count)
            let tensor = try decode(
                source.bytes, name: NPYFile.arrayName(forPath: path), limits: limits,
                mapped: file, fileOffset: 0)
            return NPYFile(path: path, tensor: tensor, source: source)
        }
    }

    /// Writes `tensor` as a `.npy` file at `path`, atomically: `original`'s bytes when `tensor` is
    /// its array unchanged, otherwise as `numpy.save` writes it.
    public static func write(_ tensor: Tensor, to path: String, original: NPYFile? = nil) throws {
        try FileError.wrapping(path) {
            let name = NPYFile.arrayName(forPath: path)
            if let original, tensor.storage === original.tensor.storage || tensor.isBitwiseEqual(to: original.tensor) {
                try AtomicFileWriter.write(to: path) { out in
                    try TensorStreamer.forEachChunk(original.source.bytes, release: original.source.mappedFile != nil) {
                        try out.write($0)
                    }
                }
                return
            }
            let header = try NPYFormat.header(for: tensor, name: name)
            try AtomicFileWriter.write(to: path) { out in
                try out.write(header)
                try tensor.withUnsafeBytes { bytes in
                    try TensorStreamer.forEachChunk(bytes, release: tensor.storage.mappedFile != nil) {
                        try out.write($0)
                    }
                }
            }
        }
    }
}
