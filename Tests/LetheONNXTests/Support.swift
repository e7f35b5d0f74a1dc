import Foundation
import XCTest
import LetheCore
import LetheIR
@testable import LetheONNX

/// Paths and helpers shared by the ONNX tests.
enum Fixtures {
    static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static let folder = packageRoot + "/formats/onnx/fixtures"

    static func path(_ name: String) -> String { folder + "/" + name }

    /// One tensor as the reference library decoded it.
    struct ExpectedTensor {
        let name: String
        let type: Int32
        let dims: [Int]
        let bytes: [UInt8]
        let nodeOutput: String?
    }

    static func expected(_ model: String, in folder: String = Fixtures.folder) throws -> [ExpectedTensor] {
        let data = try Data(contentsOf: URL(fileURLWithPath: folder + "/" + model + ".expected.json"))
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        let tensors = try XCTUnwrap(json["tensors"] as? [[String: Any]])
        return try tensors.map { entry in
            ExpectedTensor(
                name: try XCTUnwrap(entry["name"] as? String),
                type: Int32(try XCTUnwrap(entry["type"] as? Int)),
                dims: try XCTUnwrap(entry["dims"] as? [Int]),
                bytes: hexBytes(try XCTUnwrap(entry["hex"] as? String)),
                nodeOutput: entry["node_output"] as? String)
        }
    }

    static func hexBytes(_ hex: String) -> [UInt8] {
        var out: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            out.append(UInt8(hex[index..<next], radix: 16) ?? 0)
            index = next
        }
        return out
    }

    static func bytes(of tensor: Tensor) -> [UInt8] {
        tensor.withUnsafeBytes { Array($0) }
    }

    static func fileBytes(_ path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    static func makeTemporaryFolder() throws -> String {
        let path = NSTemporaryDirectory() + "lethe-onnx-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Every tensor the IR holds for a graph: initializers, then node tensors (recursing into
    /// subgraphs), as the fixture script lists them.
    static func tensors(of graph: Graph) -> [(name: String, tensor: Tensor, nodeOutput: String?)] {
        var out = graph.initializers.map { (name: $0.name, tensor: $0.tensor, nodeOutput: String?.none) }
        for node in graph.nodes {
            for (_, value) in node.attributes {
                switch value {
                case .tensor(let t): out.append((name: "", tensor: t, nodeOutput: node.outputs.first))
                case .graph(let g): out += tensors(of: g)
                default: break
                }
            }
        }
        return out
    }
}

/// The Python interpreter with onnx/onnxruntime, or a skip (a failure under CI).
enum Python {
    static func interpreter() throws -> String {
        let env = ProcessInfo.processInfo.environment
        let path = env["LETHE_PYTHON"] ?? Fixtures.packageRoot + "/.build/venv/bin/python3"
        if FileManager.default.isExecutableFile(atPath: path) { return path }
        if env["CI"] != nil { XCTFail("Python interpreter \(path) missing under CI"); throw XCTSkip("no python") }
        throw XCTSkip("Python reference libraries not found at \(path); set LETHE_PYTHON")
    }

    /// Runs `script` with `arguments`, returning stdout; fails the test on a non-zero exit.
    @discardableResult
    static func run(_ script: String, _ arguments: [String] = []) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try interpreter())
        process.arguments = ["-c", script] + arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let stdout = String(decoding: outData, as: UTF8.self)
        if process.terminationStatus != 0 {
            XCTFail("python failed (\(process.terminationStatus)): \(String(decoding: errData, as: UTF8.self))")
        }
        return stdout
    }
}
