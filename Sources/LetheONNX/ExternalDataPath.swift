import Foundation
import LetheCore

/// Where an ONNX tensor's external data may come from: a relative path that stays inside the
/// model's folder, naming a regular file with one link. Everything else is refused with the reason.
enum ExternalDataPath {
    /// Refuses locations that name a place outside any folder by their spelling alone: absolute
    /// paths (POSIX or a Windows drive), NUL bytes, and `..` components.
    static func refuseUnsafeSpelling(_ location: String, tensor: String) throws {
        let utf8 = Array(location.utf8)
        let driveLetter =
            utf8.count >= 2 && utf8[1] == UInt8(ascii: ":")
            && (UInt8(ascii: "A")...UInt8(ascii: "z")).contains(utf8[0])
        if location.hasPrefix("/") || location.hasPrefix("\\") || driveLetter {
            throw ONNXError.unsafeExternalLocation(tensor: tensor, location: location, reason: "absolute path")
        }
        if location.utf8.contains(0) {
            throw ONNXError.unsafeExternalLocation(tensor: tensor, location: location, reason: "contains a NUL byte")
        }
        let components = location.split(whereSeparator: { $0 == "/" || $0 == "\\" })
        if components.contains("..") {
            throw ONNXError.unsafeExternalLocation(tensor: tensor, location: location, reason: "uses '..'")
        }
    }

    /// The real path of `location` relative to `folder` (whose real path is `resolvedFolder`),
    /// refused unless it stays inside it and names a regular file with one link.
    static func resolve(_ location: String, tensor: String, folder: String, resolvedFolder: String) throws -> String {
        try refuseUnsafeSpelling(location, tensor: tensor)
        let joined = folder.hasSuffix("/") ? folder + location : folder + "/" + location
        let resolved: String
        switch FilePaths.resolved(joined) {
        case .success(let path): resolved = path
        case .failure(let error):
            let reason =
                error.code == ENOENT
                ? "does not exist" : "cannot be resolved (\(String(cString: strerror(error.code))))"
            throw ONNXError.externalData(tensor: tensor, reason: "data file '\(location)' \(reason)")
        }
        // A second name for the same inode may sit anywhere on the file system, so a hard-linked data
        // file could be outside the folder whatever its path says; a device or FIFO could hang the read.
        var status = stat()
        if stat(resolved, &status) == 0 {
            guard status.st_mode & S_IFMT == S_IFREG else {
                throw ONNXError.unsafeExternalLocation(tensor: tensor, location: location, reason: "not a regular file")
            }
            guard status.st_nlink <= 1 else {
                throw ONNXError.unsafeExternalLocation(
                    tensor: tensor, location: location,
                    reason:
                        "the file has \(status.st_nlink) hard links, so it may also live outside the model's folder (copy it to load)"
                )
            }
        }
        let prefix = resolvedFolder.hasSuffix("/") ? resolvedFolder : resolvedFolder + "/"
        guard resolved.hasPrefix(prefix) else {
            throw ONNXError.unsafeExternalLocation(
                tensor: tensor, location: location,
                reason: "resolves to '\(resolved)', outside '\(resolvedFolder)'")
        }
        return resolved
    }

    /// The real path of an existing `path`, or a `FileError` naming it.
    static func realPath(_ path: String) throws -> String {
        do { return try FilePaths.resolved(path).get() } catch { throw FileError(path: path, underlying: error) }
    }
}
