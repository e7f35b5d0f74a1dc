import Foundation
import XCTest

/// Where the package and its reference Python are, and how tests run programs: one copy for
/// every test target.
public enum TestEnvironment {
    /// The package's root folder, found from this file's place in it (`Tests/LetheTestSupport/`).
    public static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    public static var packageRootURL: URL { URL(fileURLWithPath: packageRoot, isDirectory: true) }

    /// The reference interpreter's path: `LETHE_PYTHON`, else the package's `.build/venv`.
    public static var pythonPath: String {
        ProcessInfo.processInfo.environment["LETHE_PYTHON"] ?? packageRoot + "/.build/venv/bin/python3"
    }

    /// The reference interpreter when it exists.
    public static var python: String? {
        FileManager.default.isExecutableFile(atPath: pythonPath) ? pythonPath : nil
    }

    /// The reference interpreter, or a skip: missing references fail the test only under `CI`,
    /// so a machine without the venv still runs everything else.
    public static func requirePython() throws -> String {
        if let python { return python }
        if ProcessInfo.processInfo.environment["CI"] != nil {
            XCTFail("no Python at \(pythonPath) under CI (set LETHE_PYTHON)")
        }
        throw XCTSkip("no Python reference libraries at \(pythonPath); set LETHE_PYTHON")
    }

    /// What a program printed and how it ended.
    public struct ProcessResult: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
    }

    /// A reference script that exited with an error.
    public struct PythonFailure: Error, CustomStringConvertible {
        public let status: Int32
        public let stderr: String
        public var description: String { "python failed (\(status)): \(stderr)" }
    }

    /// Runs `program` to its end: `folder` is its working directory, `environment` adds to the
    /// test's own, `input` is written to its standard input.
    public static func run(
        _ program: String, _ arguments: [String], in folder: String? = nil,
        environment: [String: String] = [:], input: String? = nil
    ) throws -> ProcessResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        if let folder { process.currentDirectoryURL = URL(fileURLWithPath: folder) }
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        if input != nil { process.standardInput = stdin }
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        if let input {
            stdin.fileHandleForWriting.write(Data(input.utf8))
            try stdin.fileHandleForWriting.close()
        }
        // Both pipes are drained before waiting, so a chatty program cannot block on a full pipe.
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        let err = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return ProcessResult(
            status: process.terminationStatus, stdout: String(decoding: out, as: UTF8.self),
            stderr: String(decoding: err, as: UTF8.self))
    }

    /// Runs `script` (`python -c`) with `arguments` and returns its standard output; throws
    /// `PythonFailure` on a non-zero exit, and skips (see `requirePython`) without an interpreter.
    @discardableResult
    public static func runPython(
        _ script: String, arguments: [String] = [], input: String? = nil,
        interpreter: String? = nil
    ) throws -> String {
        let result = try run(try interpreter ?? requirePython(), ["-c", script] + arguments, input: input)
        guard result.status == 0 else { throw PythonFailure(status: result.status, stderr: result.stderr) }
        return result.stdout
    }
}
