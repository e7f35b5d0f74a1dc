import Foundation
import LetheCore
import LetheTestSupport
import XCTest

/// Fixture paths and temporary folders for format tests (the package root and Python are
/// LetheTestSupport's).
enum TestSupport {
    static var packageRoot: String { TestEnvironment.packageRoot }

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

    /// Runs `script` with the reference interpreter and returns its standard output.
    @discardableResult
    static func runPython(_ script: String, arguments: [String] = []) throws -> String {
        try TestEnvironment.runPython(script, arguments: arguments)
    }
}
