import Foundation
import XCTest

/// Runs the built `lethe` executable and captures what it prints.
struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

enum CLI {
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static var executable: URL {
        // The test bundle sits beside (Darwin) or is (Linux) the products folder of the same build.
        let bundle = Bundle(for: BundleToken.self).bundleURL
        let candidates = [bundle.appendingPathComponent("lethe"),
                          bundle.deletingLastPathComponent().appendingPathComponent("lethe")]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates[1]
    }

    static func sample(_ name: String) -> String {
        packageRoot.appendingPathComponent("samples").appendingPathComponent(name).path
    }

    /// Runs `lethe` with `arguments`; `folder` is its working directory, `environment` adds to the
    /// test's own, and `addressSpaceKiB` runs it under `ulimit -v` (so an oversized allocation
    /// kills it instead of passing unnoticed).
    @discardableResult
    static func run(_ arguments: [String], in folder: String? = nil, environment: [String: String] = [:],
                    addressSpaceKiB: Int? = nil) throws -> CommandResult {
        guard let addressSpaceKiB else { return try capture(executable.path, arguments, in: folder, environment: environment) }
        return try capture("/bin/bash", ["-c", "ulimit -v \(addressSpaceKiB); exec \"$0\" \"$@\"", executable.path] + arguments,
                           in: folder, environment: environment)
    }

    /// Runs a program to its end and returns its exit status and what it printed.
    private static func capture(_ program: String, _ arguments: [String], in folder: String? = nil,
                                environment: [String: String] = [:]) throws -> CommandResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        if let folder { process.currentDirectoryURL = URL(fileURLWithPath: folder) }
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdoutData = out.fileHandleForReading.readDataToEndOfFile()
        let stderrData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return CommandResult(status: process.terminationStatus,
                             stdout: String(decoding: stdoutData, as: UTF8.self),
                             stderr: String(decoding: stderrData, as: UTF8.self))
    }

    static func temporaryFolder() throws -> String {
        let path = NSTemporaryDirectory() + "lethe-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// The Python with the reference libraries, or nil (a skip outside CI, a failure in CI).
    static func python() throws -> String {
        let configured = ProcessInfo.processInfo.environment["LETHE_PYTHON"]
            ?? packageRoot.appendingPathComponent(".build/venv/bin/python3").path
        if FileManager.default.isExecutableFile(atPath: configured) { return configured }
        if ProcessInfo.processInfo.environment["CI"] != nil {
            XCTFail("LETHE_PYTHON (\(configured)) is missing in CI")
        }
        throw XCTSkip("no Python reference libraries at \(configured)")
    }

    /// Runs a Python snippet and returns its stdout.
    static func python(_ script: String, _ arguments: [String] = []) throws -> String {
        let result = try capture(try python(), ["-c", script] + arguments)
        guard result.status == 0 else {
            throw NSError(domain: "python", code: Int(result.status),
                          userInfo: [NSLocalizedDescriptionKey: result.stderr])
        }
        return result.stdout
    }
}

private final class BundleToken {}
