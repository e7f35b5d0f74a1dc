import CZlib
import XCTest
@testable import LetheZip

/// `CRC32.update` (whole 256-byte blocks folded by carry-less multiplies, the rest by zlib) gives
/// zlib's CRC-32 for every length, alignment and starting CRC, and in pieces as in one call.
final class CRC32Tests: XCTestCase {
    private func zlibCRC(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        UInt32(crc32_z(UInt(crc), bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count))
    }

    func testAgreesWithZlibForEveryLengthAlignmentAndStart() {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let bytes = (0..<(70_000 + 64)).map { _ -> UInt8 in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
        bytes.withUnsafeBytes { all in
            var lengths = Array(0..<1_100) + [4_095, 4_096, 4_097, 65_536, 70_000]
            lengths += [255, 256, 257, 511, 512, 513].map { $0 + 10_000 }
            for length in lengths {
                for offset in [0, 1, 3, 17, 63] where offset + length <= all.count {
                    let piece = UnsafeRawBufferPointer(rebasing: all[offset..<(offset + length)])
                    for start: UInt32 in [0, 0xFFFF_FFFF, UInt32(truncatingIfNeeded: length &* 2_654_435_761)] {
                        XCTAssertEqual(
                            CRC32.update(start, piece), zlibCRC(start, piece),
                            "length \(length) offset \(offset) start \(start)")
                    }
                }
            }
            // Chained over uneven pieces, as the npz reader streams a member.
            var crc: UInt32 = 0
            var position = 0
            for size in [300, 1, 4_096, 257, 0, 10_000] {
                crc = CRC32.update(crc, UnsafeRawBufferPointer(rebasing: all[position..<(position + size)]))
                position += size
            }
            XCTAssertEqual(crc, zlibCRC(0, UnsafeRawBufferPointer(rebasing: all[..<position])))
        }
    }

    /// Summed in parts side by side and combined, for part sizes that split the bytes evenly,
    /// unevenly, into more parts than cores, and not at all.
    func testPartsSummedSideBySideCombineToZlibsCRC() {
        let bytes = (0..<100_003).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
        bytes.withUnsafeBytes { all in
            let expected = zlibCRC(0, all)
            for minimumPart in [1, 256, 1_000, 33_334, 50_000, 100_003, 1 << 30] {
                XCTAssertEqual(CRC32.of(all, release: false, minimumPart: minimumPart), expected, "part \(minimumPart)")
            }
            XCTAssertEqual(CRC32.of(UnsafeRawBufferPointer(rebasing: all[..<0]), release: false, minimumPart: 1), 0)
        }
    }
}
