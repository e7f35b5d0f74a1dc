import Foundation
import XCTest
import LetheCore
import LetheIR
@testable import LetheONNX

/// Timings on a large model, run only when `LETHE_ONNX_BENCH` names one (they need a big file).
final class ONNXBenchmarkTests: XCTestCase {
    func testReadPatchAndRebuildTimings() throws {
        guard let path = ProcessInfo.processInfo.environment["LETHE_ONNX_BENCH"] else {
            throw XCTSkip("set LETHE_ONNX_BENCH to a large .onnx file to time reading and writing")
        }
        func time(_ label: String, _ body: () throws -> Void) rethrows {
            let start = Date()
            try body()
            print(String(format: "ONNX bench: %@ %.3f s", label, Date().timeIntervalSince(start)))
        }
        let folder = try Fixtures.makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var onnx: ONNXFile!
        try time("read") { onnx = try ONNXFormat.read(path: path) }
        let bytes = onnx.model.graph.initializers.reduce(0) { $0 + $1.tensor.byteCount }
        print("ONNX bench: \(onnx.model.graph.initializers.count) initializers, \(bytes) bytes")
        try time("write unchanged (patch path)") {
            try ONNXFormat.write(onnx.model, to: folder + "/same.onnx", original: onnx)
        }
        var patched = onnx.model
        var first = patched.graph.initializers[0].tensor
        first.withUnsafeMutableBytes { $0.storeBytes(of: 0xFF, toByteOffset: 0, as: UInt8.self) }
        patched.graph.initializers[0].tensor = first
        try time("write one patched tensor") {
            try ONNXFormat.write(patched, to: folder + "/patched.onnx", original: onnx)
        }
        patched.graph.initializers.append(Initializer(name: "extra", tensor: Tensor(shape: [1], values: [Float(1)])))
        try time("write with a structural change (rebuild)") {
            try ONNXFormat.write(patched, to: folder + "/rebuilt.onnx", original: onnx)
        }
        try time("write without original") {
            try ONNXFormat.write(onnx.model, to: folder + "/fresh.onnx", original: nil)
        }
    }
}
