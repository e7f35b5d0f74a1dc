import LetheCore

/// The checkpoint formats Lethe reads and writes.
public enum CheckpointFormat: String, Sendable, CaseIterable, Codable {
    /// `npy` is a single NumPy array: a checkpoint of one tensor, named after the file (see
    /// `NPYFile.arrayName(forPath:)`).
    case onnx, safetensors, npz, npy

    /// Whether files of this format carry a graph (ONNX) or only weights.
    public var hasGraph: Bool { self == .onnx }

    /// The format a path's extension names, if any.
    public static func fromExtension(_ path: String) -> CheckpointFormat? {
        let lower = path.lowercased()
        if lower.hasSuffix(".onnx") { return .onnx }
        if lower.hasSuffix(".safetensors") { return .safetensors }
        if lower.hasSuffix(".npz") { return .npz }
        if lower.hasSuffix(".npy") { return .npy }
        return nil
    }

    /// The format of an existing file, from its first bytes, falling back to its extension.
    public static func detect(path: String) throws -> CheckpointFormat {
        let file = try MappedFile(path: path)
        let bytes = file.bytes
        if bytes.count >= 4, bytes[0] == 0x50, bytes[1] == 0x4B, bytes[2] == 0x03 || bytes[2] == 0x05 {
            return .npz
        }
        if bytes.count >= 6, bytes.prefix(6).elementsEqual([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]) { // \x93NUMPY
            return .npy
        }
        if bytes.count >= 9, bytes[8] == UInt8(ascii: "{") {
            let length = bytes.loadUnaligned(as: UInt64.self).littleEndian
            if length > 0, length <= UInt64(bytes.count - 8) { return .safetensors }
        }
        if let byExtension = fromExtension(path) { return byExtension }
        throw FileError(
            path: path,
            underlying: UsageError(
                "unknown checkpoint format (expected .onnx, .safetensors, .npz or .npy)"))
    }
}
