import Foundation
import LetheCore
import XCTest
@testable import LetheNumPy

/// Random mutations of valid files must fail cleanly or read consistently, never crash.
/// `LETHE_FUZZ_ITERATIONS` raises the count for longer local runs.
final class FuzzTests: XCTestCase {
    private var iterations: Int {
        Int(ProcessInfo.processInfo.environment["LETHE_FUZZ_ITERATIONS"] ?? "") ?? 300
    }

    func testMutatedArchivesAndArrays() throws {
        var random = SplitMix(seed: 0x1E7E)
        let folder = try TestSupport.temporaryDirectory()
        let path = "\(folder)/fuzz.npz"
        let sources = try ["data.npz", "deflated.npz", "stored.npz"].map { try TestSupport.bytes(TestSupport.fixture($0)) }
        let arrays = try ["v1_f4.npy", "v3_c8.npy", "fortran_big_endian_i4.npy"].map {
            try TestSupport.bytes(TestSupport.fixture($0))
        }
        var accepted = 0
        for _ in 0..<iterations {
            var bytes = sources[random.next(sources.count)]
            mutate(&bytes, &random)
            try TestSupport.write(bytes, to: path)
            if let file = try? NPZFormat.read(path: path) {
                accepted += 1
                for initializer in file.model.graph.initializers {
                    XCTAssertEqual(initializer.tensor.byteCount,
                                   Tensor.byteCount(dtype: initializer.tensor.dtype, shape: initializer.tensor.shape))
                }
            }
            var array = arrays[random.next(arrays.count)]
            mutate(&array, &random)
            _ = try? array.withUnsafeBytes { try NPYFormat.parse($0, name: "fuzz") }
        }
        XCTAssertLessThan(accepted, iterations)
    }

    /// Overwrites 1–4 bytes, biased towards headers and the end records, or cuts the tail.
    private func mutate(_ bytes: inout [UInt8], _ random: inout SplitMix) {
        guard !bytes.isEmpty else { return }
        for _ in 0...random.next(4) {
            let region = random.next(3)
            let index = region == 0 ? random.next(min(bytes.count, 128))
                : region == 1 ? bytes.count - 1 - random.next(min(bytes.count, 256))
                : random.next(bytes.count)
            let values: [UInt8] = [0, 0xFF, 0x7F, 0x80, UInt8(truncatingIfNeeded: random.next(256))]
            bytes[index] = values[random.next(values.count)]
        }
        if random.next(8) == 0 { bytes.removeLast(random.next(bytes.count)) }
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
