import Foundation
import LetheCore
import XCTest
@testable import LetheNumPy

final class NPYTests: XCTestCase {
    private func parseFixture(_ name: String) throws -> Tensor {
        let bytes = try TestSupport.bytes(TestSupport.fixture(name))
        return try bytes.withUnsafeBytes { try NPYFormat.parse($0, name: name) }
    }

    /// Every single-array fixture (versions 1–3, big-endian, Fortran order, scalar, empty) gives
    /// the C-order little-endian bytes NumPy reports.
    func testFixturesMatchNumPyValues() throws {
        let manifest = try TestSupport.manifest("npz")
        let names = manifest.keys.filter { $0.hasSuffix(".npy") }.sorted()
        XCTAssertGreaterThanOrEqual(names.count, 10)
        for name in names {
            let expected = manifest[name] as! [String: Any]
            let tensor = try parseFixture(name)
            XCTAssertEqual(tensor.dtype.rawValue, expected["dtype"] as? String, name)
            XCTAssertEqual(tensor.shape, expected["shape"] as? [Int], name)
            XCTAssertEqual(TestSupport.hex(tensor), expected["hex"] as? String, name)
        }
    }

    func testFortranBigEndianValues() throws {
        let tensor = try parseFixture("fortran_big_endian_i4.npy")
        XCTAssertEqual(tensor.shape, [2, 3, 4])
        tensor.withUnsafeBufferPointer(of: Int32.self) { XCTAssertEqual(Array($0), (0..<24).map(Int32.init)) }
    }

    func testEncodeMatchesNumPySave() throws {
        // The version-1.0 fixture was written by NumPy's write_array; re-encoding must match.
        let original = try TestSupport.bytes(TestSupport.fixture("v1_f4.npy"))
        let tensor = try parseFixture("v1_f4.npy")
        XCTAssertEqual(try NPYFormat.encode(tensor), original)
        let scalar = try parseFixture("scalar_bool.npy")
        XCTAssertEqual(try NPYFormat.encode(scalar), try TestSupport.bytes(TestSupport.fixture("scalar_bool.npy")))
        let empty = try parseFixture("empty_f2.npy")
        XCTAssertEqual(try NPYFormat.encode(empty), try TestSupport.bytes(TestSupport.fixture("empty_f2.npy")))
    }

    func testRefusesPickledAndStructured() throws {
        XCTAssertThrowsError(try parseFixture("pickled.npy")) { error in
            guard case NPYError.pickledArray = error else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("pickle"))
        }
        XCTAssertThrowsError(try parseFixture("structured.npy")) { error in
            guard case NPYError.unsupportedDescr = error else { return XCTFail("\(error)") }
        }
    }

    func testRefusesBFloat16WithAdvice() {
        let tensor = Tensor(shape: [2], values: [BFloat16(1), BFloat16(2)])
        XCTAssertThrowsError(try NPYFormat.encode(tensor)) { error in
            XCTAssertTrue("\(error)".contains("NumPy has no bfloat16; convert with dtype f32"), "\(error)")
        }
    }

    /// Every prefix of a valid file fails cleanly.
    func testTruncatedAtEveryByte() throws {
        for name in ["v1_f4.npy", "v3_c8.npy", "fortran_f4.npy"] {
            let bytes = try TestSupport.bytes(TestSupport.fixture(name))
            for cut in 0..<bytes.count {
                XCTAssertThrowsError(
                    try Array(bytes[0..<cut]).withUnsafeBytes { try NPYFormat.parse($0, name: name) },
                    "\(name) cut at \(cut)")
            }
        }
    }

    private func header(_ dict: String, version: UInt8 = 1) -> [UInt8] {
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [version, 0]
        let body = Array(dict.utf8) + [0x0A]
        if version == 1 {
            bytes += [UInt8(body.count & 0xFF), UInt8(body.count >> 8)]
        } else {
            bytes += [UInt8(body.count & 0xFF), UInt8(body.count >> 8), 0, 0]
        }
        return bytes + body
    }

    private func assertRefused(_ bytes: [UInt8], _ message: String, file: StaticString = #filePath, line: UInt = #line)
    {
        XCTAssertThrowsError(
            try bytes.withUnsafeBytes { try NPYFormat.parse($0, name: "t.npy") }, message,
            file: file, line: line
        ) { error in
            XCTAssertTrue(error is LetheError, "\(error)", file: file, line: line)
        }
    }

    func testHostileHeaders() {
        assertRefused(Array("NOTNUMPY\u{1}\u{0}".utf8), "wrong magic")
        assertRefused(header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", version: 4), "version 4")
        assertRefused(header("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }"), "negative dim")
        assertRefused(
            header("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }"),
            "overflowing shape")
        assertRefused(
            header("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,), }"),
            "huge dim")
        assertRefused(
            header("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000,), }"),
            "shape larger than the data")
        assertRefused(header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}"), "extra key")
        assertRefused(header("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}"), "duplicate")
        assertRefused(header("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }"), "non-bool order")
        assertRefused(header("{'descr': '<f4', 'fortran_order': False, 'shape': [2], }"), "list shape")
        assertRefused(header("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }"), "object")
        assertRefused(header("{'descr': '<U3', 'fortran_order': False, 'shape': (2,), }"), "unicode without its data")
        assertRefused(header("{'descr': '|S-1', 'fortran_order': False, 'shape': (2,), }"), "negative string width")
        assertRefused(header("{'descr': '<U', 'fortran_order': False, 'shape': (2,), }"), "string without a width")
        assertRefused(header("{'descr': '|Sx', 'fortran_order': False, 'shape': (2,), }"), "string width not a number")
        assertRefused(
            header("{'descr': '|S99999999999999999999', 'fortran_order': False, 'shape': (2,), }"),
            "string width overflowing")
        assertRefused(
            header("{'descr': '<U4611686018427387904', 'fortran_order': False, 'shape': (2,), }"),
            "string byte size overflowing")
        assertRefused(header("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }"), "structured")
        assertRefused(header("__import__('os').system('true')"), "code")
        var long = header(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (0,), }" + String(repeating: " ", count: 20_000),
            version: 2)
        assertRefused(long, "header over the limit")
        long = [0x93] + Array("NUMPY".utf8) + [2, 0, 0xFF, 0xFF, 0xFF, 0xFF]
        assertRefused(long, "declared 4 GB header")
        // A correct header with two data bytes too many or too few.
        let good = header("{'descr': '<i2', 'fortran_order': False, 'shape': (2,), }")
        XCTAssertNoThrow(try (good + [1, 0, 2, 0]).withUnsafeBytes { try NPYFormat.parse($0, name: "t") })
        assertRefused(good + [1, 0, 2], "short data")
        assertRefused(good + [1, 0, 2, 0, 0], "long data")
    }

    func testPython2StyleHeaderAccepted() throws {
        var bytes = header("{'descr': '<i2', 'fortran_order': False, 'shape': (2L,), }")
        bytes += [1, 0, 2, 0]
        let tensor = try bytes.withUnsafeBytes { try NPYFormat.parse($0, name: "t") }
        tensor.withUnsafeBufferPointer(of: Int16.self) { XCTAssertEqual(Array($0), [1, 2]) }
    }
}
