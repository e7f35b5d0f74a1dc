#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An error that can be shown to a user as one line.
///
/// Every reader and writer throws errors that conform, so the command line can print
/// `file: what is wrong (where)` without knowing the format.
public protocol LetheError: Error, CustomStringConvertible, Sendable {}

/// Wraps an error with the file it concerns.
public struct FileError: LetheError {
    public let path: String
    public let underlying: any Error

    public init(path: String, underlying: any Error) {
        self.path = path
        self.underlying = underlying
    }

    public var description: String { "\(path): \(underlying)" }

    /// Runs `body`, attaching `path` to any error that does not already name a file.
    public static func wrapping<R>(_ path: String, _ body: () throws -> R) throws -> R {
        do {
            return try body()
        } catch let error as FileError {
            throw error
        } catch {
            throw FileError(path: path, underlying: error)
        }
    }
}

/// Failures of the operating system: opening, mapping, writing, renaming.
public struct SystemError: LetheError {
    public let operation: String
    public let code: Int32

    public init(_ operation: String, code: Int32) {
        self.operation = operation
        self.code = code
    }

    public var description: String {
        "\(operation) failed: \(String(cString: strerror(code)))"
    }
}

/// A value the user gave, or a combination of values, that cannot work.
public struct UsageError: LetheError {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A size, count or depth that exceeds what Lethe allows before it allocates.
public struct LimitError: LetheError {
    public let what: String
    public let value: Int
    public let limit: Int
    public init(what: String, value: Int, limit: Int) {
        self.what = what
        self.value = value
        self.limit = limit
    }
    public var description: String { "\(what) is \(value), over the limit of \(limit)" }
}
