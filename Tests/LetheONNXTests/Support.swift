import Foundation
import XCTest
import LetheCore
import LetheIR
import LetheTestSupport
@testable import LetheONNX

/// Paths and helpers shared by the ONNX tests.
enum Fixtures {
    static var packageRoot: String { TestEnvironment.packageRoot }

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
    static func interpreter() throws -> String { try TestEnvironment.requirePython() }

    /// Runs `script` with `arguments`, returning stdout; a non-zero exit fails the test.
    @discardableResult
    static func run(_ script: String, _ arguments: [String] = []) throws -> String {
        try TestEnvironment.runPython(script, arguments: arguments)
    }
}
