import Foundation
import LetheCore
import XCTest
@testable import LetheZip

/// The zip code on its own: what ZipWriter writes, ZipDirectory reads back, with the properties
/// formats/npz/README.md gives as the reasons it is not libzip.
final class ZipRoundTripTests: XCTestCase {
    private func temporaryPath(_ name: String) throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("lethe-zip-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        return folder.appendingPathComponent(name).path
    }

    private let members: [(name: String, deflate: Bool, bytes: [UInt8])] = [
        ("a.npy", false, Array(0..<200).map { UInt8($0 % 251) }),
        ("b.npy", true, [UInt8](repeating: 7, count: 5000)),
        ("ü.npy", false, [1, 2, 3]),
        ("empty.npy", false, [])
    ]

    private func writeArchive() throws -> String {
        let path = try temporaryPath("test.zip")
        try AtomicFileWriter.write(to: path) { out in
            let zip = ZipWriter(out)
            for member in members {
                try zip.addMember(name: member.name, deflate: member.deflate, alignment: 64) { emit in
                    // In two pieces, as the npz writer streams a header and then the data.
                    let half = member.bytes.count / 2
                    try member.bytes[..<half].withUnsafeBytes { try emit($0) }
                    try member.bytes[half...].withUnsafeBytes { try emit($0) }
                }
            }
            try zip.finish()
        }
        return path
    }

    func testMembersReadBackWithSizesCRCsAndAlignment() throws {
        let file = try MappedFile(path: try writeArchive())
        let directory = try ZipDirectory.read(file.bytes, limits: .default)
        XCTAssertEqual(directory.members.map(\.name), members.map(\.name))
        for (member, expected) in zip(directory.members, members) {
            XCTAssertEqual(member.isDeflated, expected.deflate, member.name)
            XCTAssertEqual(member.uncompressedSize, expected.bytes.count, member.name)
            XCTAssertEqual(member.crc, CRC32.of(expected.bytes), member.name)
            let data = UnsafeRawBufferPointer(rebasing: file.bytes[member.dataRange])
            if expected.deflate {
                let inflater = try RawInflater(input: data, name: member.name, declared: member.uncompressedSize)
                var out = [UInt8](repeating: 0, count: member.uncompressedSize)
                try out.withUnsafeMutableBytes { try inflater.read(into: $0) }
                try inflater.finish()
                XCTAssertEqual(out, expected.bytes, member.name)
                XCTAssertEqual(inflater.crc, member.crc, member.name)
            } else {
                // Stored data starts on a 64-byte boundary, so it can be mapped in place.
                XCTAssertEqual(member.dataOffset % 64, 0, member.name)
                XCTAssertEqual(Array(data), expected.bytes, member.name)
            }
            // Both CRC fields sit where in-place patching writes them.
            for offset in [member.crcOffsets.local, member.crcOffsets.central] {
                XCTAssertEqual(
                    file.bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self).littleEndian,
                    member.crc, member.name)
            }
        }
    }

    /// Inflating never writes past the declared size: a stream longer than declared is refused.
    func testInflateStopsAtTheDeclaredSize() throws {
        let file = try MappedFile(path: try writeArchive())
        let member = try ZipDirectory.read(file.bytes, limits: .default).members[1]
        let data = UnsafeRawBufferPointer(rebasing: file.bytes[member.dataRange])
        let inflater = try RawInflater(input: data, name: member.name, declared: 100)
        var out = [UInt8](repeating: 0, count: 100)
        try out.withUnsafeMutableBytes { try inflater.read(into: $0) }
        XCTAssertThrowsError(try inflater.finish()) { error in
            guard case ZipError.sizeMismatch(_, 100, _) = error else { return XCTFail("\(error)") }
        }
    }

    func testEntryLimitIsChecked() throws {
        let file = try MappedFile(path: try writeArchive())
        var limits = Limits.default
        limits.maxZipEntries = 3
        XCTAssertThrowsError(try ZipDirectory.read(file.bytes, limits: limits)) { error in
            guard case ZipError.tooManyEntries(4, 3) = error else { return XCTFail("\(error)") }
        }
    }
}
