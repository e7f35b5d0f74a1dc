import XCTest
import LetheCore
@testable import LetheImages
import LetheTestSupport

/// Damaged files must give an `ImageError` (or decode), never crash or allocate without bound:
/// every committed reference page, truncated at many lengths and with bytes flipped at random.
final class DecoderRobustnessTests: XCTestCase {
    static let pages = TestEnvironment.packageRootURL.appendingPathComponent("Tests/reference/images/pages")

    private func pageFiles() throws -> [[UInt8]] {
        let paths =
            FileManager.default.enumerator(atPath: Self.pages.path)?.compactMap { $0 as? String }
            .filter { $0.hasSuffix(".png") || $0.hasSuffix(".jpg") }.sorted() ?? []
        XCTAssertGreaterThanOrEqual(paths.count, 10)
        return try paths.map { Array(try Data(contentsOf: Self.pages.appendingPathComponent($0))) }
    }

    private func decodeOrImageError(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) {
        do {
            let image = try ImageDecoder.decode(bytes)
            XCTAssertEqual(image.samples.count, image.width * image.height * image.channels, file: file, line: line)
        } catch is ImageError {
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
        }
    }

    func testIntactPagesDecode() throws {
        for bytes in try pageFiles() { XCTAssertNoThrow(try ImageDecoder.decode(bytes)) }
    }

    func testTruncatedPagesFailCleanly() throws {
        for bytes in try pageFiles() {
            for length in Swift.stride(from: 0, to: bytes.count, by: max(1, bytes.count / 40)) {
                XCTAssertThrowsError(
                    try ImageDecoder.decode(Array(bytes.prefix(length))), "truncated at \(length) of \(bytes.count)")
            }
        }
    }

    func testFlippedBytesNeverCrash() throws {
        var generator = SplitMix64(seed: 10)
        for bytes in try pageFiles() {
            for _ in 0..<60 {
                var damaged = bytes
                for _ in 0..<(1 + Int(generator.next() % 4)) {
                    let index = Int(generator.next() % UInt64(damaged.count))
                    damaged[index] = UInt8(truncatingIfNeeded: generator.next())
                }
                decodeOrImageError(damaged)
            }
        }
    }

    func testNotAnImage() {
        XCTAssertThrowsError(try ImageDecoder.decode(Array("hello".utf8))) {
            XCTAssertEqual($0 as? ImageError, .notAnImage)
        }
        XCTAssertThrowsError(try ImageDecoder.decode([])) { XCTAssertEqual($0 as? ImageError, .notAnImage) }
    }
}
