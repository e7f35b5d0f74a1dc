import XCTest
@testable import LetheCore

final class FileTests: XCTestCase {
    private func temporaryFolder() throws -> String {
        let path = NSTemporaryDirectory() + "lethe-files-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    func testAtomicWriteReplacesOnlyOnCommit() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let target = folder + "/out.bin"
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: target))
        struct Boom: Error {}
        XCTAssertThrowsError(
            try AtomicFileWriter.write(to: target) { writer in
                try writer.write([9, 9, 9, 9])
                throw Boom()
            })
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: target)), Data([1, 2, 3]))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), ["out.bin"], "temporary removed")
        try AtomicFileWriter.write(to: target) { try $0.write([4, 5]) }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: target)), Data([4, 5]))
    }

    func testMappedFileErrorsNameTheFile() {
        XCTAssertThrowsError(try MappedFile(path: "/nonexistent/model.onnx")) { error in
            XCTAssertTrue("\(error)".hasPrefix("/nonexistent/model.onnx: open failed"), "\(error)")
        }
    }

    func testByteCursorRefusesReadsPastTheEnd() throws {
        let bytes: [UInt8] = [1, 0, 0, 0, 2]
        try bytes.withUnsafeBytes { raw in
            var cursor = ByteCursor(raw)
            XCTAssertEqual(try cursor.read(UInt32.self, "length"), 1)
            XCTAssertThrowsError(try cursor.read(UInt32.self, "count")) { error in
                XCTAssertEqual("\(error)", "truncated: count needs 4 bytes at offset 4, only 1 remain")
            }
            XCTAssertThrowsError(try cursor.skip(Int.max, "data"))
            XCTAssertThrowsError(try cursor.skip(-1, "data"))
        }
    }
}
