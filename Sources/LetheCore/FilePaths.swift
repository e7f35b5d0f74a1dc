#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Canonical file paths (links and `..` resolved), the one wrapper over `realpath(3)`: what the
/// external-data checks and the "is this output the input?" checks compare.
public enum FilePaths {
    /// The canonical path of `path`, or the `errno` that says why it has none.
    public static func resolved(_ path: String) -> Result<String, SystemError> {
        guard let pointer = realpath(path, nil) else { return .failure(SystemError("resolve path", code: errno)) }
        defer { free(pointer) }
        return .success(String(cString: pointer))
    }

    /// The canonical path of `path`, or nil when it does not exist (or cannot be resolved).
    public static func existing(_ path: String) -> String? {
        try? resolved(path).get()
    }
}
