import Foundation
import XCTest

/// `inspect` and `convert` on SciPy's bare `.npy` files and string-holding `.npz` files.
final class NumPyFileCommandTests: XCTestCase {
    static func corpus(_ name: String) -> String {
        CLI.packageRoot.appendingPathComponent("formats/npz/fixtures/scipy/\(name)").path
    }

    func testInspectShowsBareArraysAndStringMembers() throws {
        let bare = try CLI.run(["inspect", Self.corpus("estimate_gradients_hang.npy")])
        XCTAssertEqual(bare.status, 0, bare.stderr)
        XCTAssertTrue(bare.stdout.contains("format    npy"), bare.stdout)
        XCTAssertTrue(bare.stdout.contains("estimate_gradients_hang  f64    [2225, 2]  35.6 kB"), bare.stdout)
        let strings = try CLI.run(["inspect", "--json", Self.corpus("csc_py2.npz")])
        XCTAssertEqual(strings.status, 0, strings.stderr)
        let summary = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(strings.stdout.utf8)) as? [String: Any])
        let tensors = try XCTUnwrap(summary["tensors"] as? [[String: Any]])
        let format = try XCTUnwrap(tensors.first { $0["name"] as? String == "format" })
        XCTAssertEqual(format["dtype"] as? String, "S3")
        XCTAssertEqual(format["shape"] as? [Int], [])
    }

    func testConvertKeepsStringsAndRefusesThemWhereOnlyNumbersFit() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let source = Self.corpus("fftpack_test.npz")
        let copy = try CLI.run(["convert", source, "\(folder)/copy.npz"])
        XCTAssertEqual(copy.status, 0, copy.stderr)
        XCTAssertEqual(
            try Data(contentsOf: URL(fileURLWithPath: "\(folder)/copy.npz")),
            try Data(contentsOf: URL(fileURLWithPath: source)))
        let refused = try CLI.run(["convert", source, "\(folder)/out.safetensors"])
        XCTAssertEqual(refused.status, 2)
        XCTAssertEqual(refused.stderr.split(separator: "\n").count, 1, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("'__version__' is a NumPy string array (S3)"), refused.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(folder)/out.safetensors"))
        let pickled = try CLI.run(["inspect", Self.corpus("propack_test_data.npz")])
        XCTAssertEqual(pickled.status, 2)
        XCTAssertTrue(pickled.stderr.contains("pickled"), pickled.stderr)
    }
}
