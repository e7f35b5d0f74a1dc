import Foundation
import LetheCore
import LetheFuzzHarness
import LetheTestSupport
import XCTest

/// Feeds every committed fuzz regression input (`Tests/fuzz-regressions/<target>/NAME.<expectation>`)
/// to its fuzz target, without sanitizers, and checks the outcome the file name promises:
/// `.reject` must be refused with a `LetheError`, `.accept` must read (and, for `graph`, run or be
/// skipped for its input size). Any crash, trap or broken invariant fails the whole test process.
final class FuzzRegressionTests: XCTestCase {
    static let folder = TestEnvironment.packageRoot + "/Tests/fuzz-regressions"

    func testONNX() throws { try replay(.onnx) }
    func testSafetensors() throws { try replay(.safetensors) }
    func testNPY() throws { try replay(.npy) }
    func testNPZ() throws { try replay(.npz) }
    func testGraph() throws { try replay(.graph) }
    func testImage() throws { try replay(.image) }

    /// Every target has inputs, and nothing in the folder is left unchecked.
    func testEveryFileIsChecked() throws {
        let targets = Set(FuzzTarget.allCases.map(\.rawValue))
        let folders = try FileManager.default.contentsOfDirectory(atPath: Self.folder).filter {
            var isFolder: ObjCBool = false
            return FileManager.default.fileExists(atPath: "\(Self.folder)/\($0)", isDirectory: &isFolder)
                && isFolder.boolValue
        }
        XCTAssertEqual(Set(folders), targets)
        for target in FuzzTarget.allCases {
            let files = try inputs(target)
            XCTAssertFalse(files.isEmpty, "no regression inputs for \(target)")
            for file in files {
                XCTAssertTrue(
                    file.hasSuffix(".reject") || file.hasSuffix(".accept"),
                    "\(target.rawValue)/\(file): name must end in .reject or .accept")
            }
        }
    }

    private func inputs(_ target: FuzzTarget) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: "\(Self.folder)/\(target.rawValue)")
            .filter { !$0.hasPrefix(".") }.sorted()
    }

    private func replay(_ target: FuzzTarget) throws {
        let files = try inputs(target)
        XCTAssertFalse(files.isEmpty)
        for file in files {
            let path = "\(Self.folder)/\(target.rawValue)/\(file)"
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            let outcome = bytes.withUnsafeBytes { target.run($0) }
            let label = "\(target.rawValue)/\(file)"
            switch outcome {
            case .rejected(let error):
                XCTAssertTrue(file.hasSuffix(".reject"), "\(label) was refused: \(error)")
                XCTAssertTrue(error is any LetheError, "\(label): untyped error \(type(of: error)): \(error)")
                XCTAssertFalse("\(error)".isEmpty, label)
            case .accepted, .skipped:
                XCTAssertTrue(file.hasSuffix(".accept"), "\(label) was accepted but should be refused")
            }
        }
    }
}
