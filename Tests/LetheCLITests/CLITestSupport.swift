import Foundation
import LetheTestSupport
import XCTest

/// What the built `lethe` executable printed and how it ended.
typealias CommandResult = TestEnvironment.ProcessResult

enum CLI {
    static var packageRoot: URL { TestEnvironment.packageRootURL }

    static var executable: URL {
        // The test bundle sits beside (Darwin) or is (Linux) the products folder of the same build.
        let bundle = Bundle(for: BundleToken.self).bundleURL
        let candidates = [
            bundle.appendingPathComponent("lethe"),
            bundle.deletingLastPathComponent().appendingPathComponent("lethe")
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates[1]
    }

    static func sample(_ name: String) -> String {
        packageRoot.appendingPathComponent("samples").appendingPathComponent(name).path
    }

    /// Runs `lethe` with `arguments`; `folder` is its working directory, `environment` adds to the
    /// test's own, and `addressSpaceKiB` runs it under `ulimit -v` (so an oversized allocation
    /// kills it instead of passing unnoticed).
    @discardableResult
    static func run(
        _ arguments: [String], in folder: String? = nil, environment: [String: String] = [:],
        addressSpaceKiB: Int? = nil
    ) throws -> CommandResult {
        guard let addressSpaceKiB else {
            return try capture(executable.path, arguments, in: folder, environment: environment)
        }
        return try capture(
            "/bin/bash", ["-c", "ulimit -v \(addressSpaceKiB); exec \"$0\" \"$@\"", executable.path] + arguments,
            in: folder, environment: environment)
    }

    /// Runs a program to its end and returns its exit status and what it printed.
    private static func capture(
        _ program: String, _ arguments: [String], in folder: String? = nil,
        environment: [String: String] = [:]
    ) throws -> CommandResult {
        try TestEnvironment.run(program, arguments, in: folder, environment: environment)
    }

    static func temporaryFolder() throws -> String {
        let path = NSTemporaryDirectory() + "lethe-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// The Python with the reference libraries, or a skip (a failure in CI).
    static func python() throws -> String { try TestEnvironment.requirePython() }

    /// Runs a Python snippet and returns its stdout.
    static func python(_ script: String, _ arguments: [String] = []) throws -> String {
        try TestEnvironment.runPython(script, arguments: arguments)
    }
}

private final class BundleToken {}
