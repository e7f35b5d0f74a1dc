import Foundation
import LetheCore
import XCTest
@testable import LetheSafetensors

/// Random mutations of valid files must fail cleanly or read consistently, never crash.
/// `LETHE_FUZZ_ITERATIONS` raises the count for longer local runs.
final class FuzzTests: XCTestCase {
    func testMutatedFiles() throws {
        let iterations = Int(ProcessInfo.processInfo.environment["LETHE_FUZZ_ITERATIONS"] ?? "") ?? 2000
        var random = SplitMix64(seed: 0x5AFE)
        let sources = try ["every_dtype.safetensors", "empty_and_scalar.safetensors", "model.safetensors"]
            .map { try TestSupport.bytes(TestSupport.fixture($0)) }
        var accepted = 0
        for _ in 0..<iterations {
            var bytes = sources[random.next(below: sources.count)]
            // Header bytes matter most: digits, quotes and brackets in the JSON.
            let headerEnd = min(bytes.count, 8 + Int(bytes[0]) + Int(bytes[1]) << 8)
            for _ in 0...random.next(below: 3) {
                let index = random.next(below: 2) == 0 ? random.next(below: headerEnd) : random.next(below: bytes.count)
                let values =
                    Array("0123456789[]{}\",:-e. ".utf8) + [0, 0xFF, UInt8(truncatingIfNeeded: random.next(below: 256))]
                bytes[index] = values[random.next(below: values.count)]
            }
            if random.next(below: 10) == 0 { bytes.removeLast(random.next(below: bytes.count)) }
            if let file = try? bytes.withUnsafeBytes({ try SafetensorsFormat.read(bytes: $0, path: "fuzz") }) {
                accepted += 1
                let total = file.model.graph.initializers.reduce(0) { $0 + $1.tensor.byteCount }
                XCTAssertEqual(8 + file.headerByteCount + total, bytes.count)
            }
        }
        XCTAssertLessThan(accepted, iterations)
    }
}
