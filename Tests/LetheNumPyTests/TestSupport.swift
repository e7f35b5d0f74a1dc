import Foundation
import LetheCore
import XCTest

/// Paths, temporary folders and the Python reference interpreter for format tests.
enum TestSupport {
    static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static func fixture(_ name: String) -> String { "\(packageRoot)/formats/npz/fixtures/\(name)" }

    static func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "lethe-npz-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func bytes(_ path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    static func write(_ bytes: [UInt8], to path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    static func hex(_ tensor: Tensor) -> String {
        tensor.withUnsafeBytes { $0.map { String(format: "%02x", $0) }.joined() }
    }

    static func manifest(_ folder: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(packageRoot)/formats/\(folder)/fixtures/manifest.json"))
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }

    /// The reference interpreter (`LETHE_PYTHON`, else `.build/venv/bin/python3`); skips the
    /// test when missing, unless `CI` is set.
    static func python() throws -> String {
        let environment = ProcessInfo.processInfo.environment
        let path = environment["LETHE_PYTHON"] ?? "\(packageRoot)/.build/venv/bin/python3"
        if FileManager.default.isExecutableFile(atPath: path) { return path }
        if environment["CI"] != nil { XCTFail("no Python at \(path) (set LETHE_PYTHON)") }
        throw XCTSkip("no Python at \(path); set LETHE_PYTHON to run reference comparisons")
    }

    /// Runs `script` with the reference interpreter and returns its standard output.
    @discardableResult
    static func runPython(_ script: String, arguments: [String] = []) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try python())
        process.arguments = ["-c", script] + arguments
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw UsageError("python failed: \(String(decoding: err, as: UTF8.self))")
        }
        return String(decoding: out, as: UTF8.self)
    }
}
