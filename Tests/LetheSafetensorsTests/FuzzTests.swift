import Foundation
import LetheCore
import XCTest
@testable import LetheSafetensors

/// Random mutations of valid files must fail cleanly or read consistently, never crash.
/// `LETHE_FUZZ_ITERATIONS` raises the count for longer local runs.
final class FuzzTests: XCTestCase {
    func testMutatedFiles() throws {
        let iterations = Int(ProcessInfo.processInfo.environment["LETHE_FUZZ_ITERATIONS"] ?? "") ?? 2000
        var random = SplitMix(seed: 0x5AFE)
        let sources = try ["every_dtype.safetensors", "empty_and_scalar.safetensors", "model.safetensors"]
            .map { try TestSupport.bytes(TestSupport.fixture($0)) }
        var accepted = 0
        for _ in 0..<iterations {
            var bytes = sources[random.next(sources.count)]
            // Header bytes matter most: digits, quotes and brackets in the JSON.
            let headerEnd = min(bytes.count, 8 + Int(bytes[0]) + Int(bytes[1]) << 8)
            for _ in 0...random.next(3) {
                let index = random.next(2) == 0 ? random.next(headerEnd) : random.next(bytes.count)
                let values = Array("0123456789[]{}\",:-e. ".utf8) + [0, 0xFF, UInt8(truncatingIfNeeded: random.next(256))]
                bytes[index] = values[random.next(values.count)]
            }
            if random.next(10) == 0 { bytes.removeLast(random.next(bytes.count)) }
            if let file = try? bytes.withUnsafeBytes({ try SafetensorsFormat.read(bytes: $0, path: "fuzz") }) {
                accepted += 1
                let total = file.model.graph.initializers.reduce(0) { $0 + $1.tensor.byteCount }
                XCTAssertEqual(8 + file.headerByteCount + total, bytes.count)
            }
        }
        XCTAssertLessThan(accepted, iterations)
    }
}

/// A small deterministic generator (SplitMix64) so failures reproduce.
struct SplitMix {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next(_ bound: Int) -> Int {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return bound <= 1 ? 0 : Int(z % UInt64(bound))
    }
}
