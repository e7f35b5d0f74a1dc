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
        var random = SplitMix64(seed: 0x1E7E)
        let folder = try TestSupport.temporaryDirectory()
        let path = "\(folder)/fuzz.npz", copy = "\(folder)/copy.npz"
        let sources = try ["data.npz", "deflated.npz", "stored.npz"].map {
            try TestSupport.bytes(TestSupport.fixture($0))
        }
        let arrays = try ["v1_f4.npy", "v3_c8.npy", "fortran_big_endian_i4.npy"].map {
            try TestSupport.bytes(TestSupport.fixture($0))
        }
        var accepted = 0
        for _ in 0..<iterations {
            var bytes = sources[random.next(below: sources.count)]
            mutate(&bytes, &random)
            try TestSupport.write(bytes, to: path)
            if let file = try? NPZFormat.read(path: path) {
                accepted += 1
                // What Lethe accepts it can write back, and reads back to the same arrays bit for bit.
                XCTAssertNoThrow(try NPZFormat.write(file.model, to: copy, original: nil))
                let again = try NPZFormat.read(path: copy).model.graph.initializers
                let first = file.model.graph.initializers
                XCTAssertEqual(again.map(\.name), first.map(\.name))
                for (a, b) in zip(first, again) { XCTAssertTrue(a.tensor.isBitwiseEqual(to: b.tensor), a.name) }
            }
            var array = arrays[random.next(below: arrays.count)]
            mutate(&array, &random)
            _ = try? array.withUnsafeBytes { try NPYFormat.parse($0, name: "fuzz") }
        }
        XCTAssertLessThan(accepted, iterations)
    }

    /// Overwrites 1–4 bytes, biased towards headers and the end records, or cuts the tail.
    private func mutate(_ bytes: inout [UInt8], _ random: inout SplitMix64) {
        guard !bytes.isEmpty else { return }
        for _ in 0...random.next(below: 4) {
            let region = random.next(below: 3)
            let index =
                region == 0
                ? random.next(below: min(bytes.count, 128))
                : region == 1
                    ? bytes.count - 1 - random.next(below: min(bytes.count, 256))
                    : random.next(below: bytes.count)
            let values: [UInt8] = [0, 0xFF, 0x7F, 0x80, UInt8(truncatingIfNeeded: random.next(below: 256))]
            bytes[index] = values[random.next(below: values.count)]
        }
        if random.next(below: 8) == 0 { bytes.removeLast(random.next(below: bytes.count)) }
    }
}
