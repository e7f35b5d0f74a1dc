#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Checks on where Lethe may write.
public enum OutputPath {
    /// Refuses an output that is an input unless `inPlace`; with `inPlace`, keeps a backup (a hard
    /// link to the old file) until the caller releases it after the new file is complete.
    public static func prepare(_ output: String, inputs: [String], inPlace: Bool) throws -> InPlaceBackup? {
        guard inPlace else {
            try refuseOverwritingInput(output, inputs: inputs)
            return nil
        }
        guard let outputReal = realPath(output), inputs.contains(where: { realPath($0) == outputReal }) else {
            return nil
        }
        return try InPlaceBackup(path: outputReal)
    }

    /// Refuses an output that is one of the inputs (writing over a model needs `--in-place`).
    public static func refuseOverwritingInput(_ output: String, inputs: [String]) throws {
        guard let outputReal = realPath(output) else { return }
        for input in inputs where realPath(input) == outputReal {
            throw UsageError(
                "'\(output)' is an input; refusing to overwrite it (write elsewhere, or pass \(Setting.inPlace))")
        }
    }

    /// Whether both paths name the same existing file or folder (after links and `..`).
    public static func same(_ a: String, _ b: String) -> Bool {
        guard let first = realPath(a) else { return false }
        return realPath(b) == first
    }

    private static func realPath(_ path: String) -> String? { FilePaths.existing(path) }
}

/// A second name for a file about to be replaced, so the old contents survive until the new file is
/// complete and renamed into place.
public final class InPlaceBackup: @unchecked Sendable {
    public let path: String
    public let backupPath: String

    init(path: String) throws {
        self.path = path
        backupPath = path + ".lethe-backup"
        unlink(backupPath)
        guard link(path, backupPath) == 0 else {
            throw FileError(path: path, underlying: SystemError("keep a backup at \(backupPath)", code: errno))
        }
    }

    /// Drops the backup; call once the new file is in place (also on failure: the old file is
    /// still at `path`, since outputs are only renamed into place when complete).
    public func release() { unlink(backupPath) }
}
