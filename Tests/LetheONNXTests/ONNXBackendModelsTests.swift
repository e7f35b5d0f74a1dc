import Foundation
import XCTest
import LetheCore
import LetheIR
@testable import LetheONNX

/// Every model of the ONNX backend test suite (shipped inside the `onnx` package) reads, and
/// writes back byte for byte.
final class ONNXBackendModelsTests: XCTestCase {
    func testEveryBackendTestModelReadsAndRoundTrips() throws {
        let dataFolder = try Python.run(
            "import os, onnx.backend.test as t; print(os.path.join(os.path.dirname(t.__file__), 'data'))"
        )
        .trimmingCharacters(in: .whitespacesAndNewlines)
        let enumerator = try XCTUnwrap(FileManager.default.enumerator(atPath: dataFolder))
        let output = try Fixtures.makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: output) }
        var read = 0
        var failures: [String] = []
        var carried = 0
        for case let relative as String in enumerator where relative.hasSuffix(".onnx") {
            let path = dataFolder + "/" + relative
            do {
                let onnx = try ONNXFormat.read(path: path)
                read += 1
                carried += onnx.carriedInitializers.count
                // Round-trip a sample (writes fsync, so not all 1900).
                if read % 10 == 0 {
                    let out = output + "/model.onnx"
                    try ONNXFormat.write(onnx.model, to: out, original: onnx)
                    if try Fixtures.fileBytes(out) != Fixtures.fileBytes(path) {
                        failures.append("\(relative): not identical")
                    }
                }
            } catch {
                failures.append("\(relative): \(error)")
            }
        }
        print("ONNX backend models: \(read) read, \(carried) carried initializers, \(failures.count) failures")
        XCTAssertGreaterThan(read, 1000)
        XCTAssertEqual(failures, [])
    }
}
