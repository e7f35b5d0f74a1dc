import Foundation
import LetheCore
import XCTest

/// Views into files written by other tools may start at any byte; element reads still see the
/// right values, through an aligned copy, while byte copies use the view as it is.
final class TensorAlignmentTests: XCTestCase {
    func testUnalignedViewsReadTheirElements() throws {
        let values: [Float] = [1.5, -2, 3.25, 1e-3, 7]
        var bytes = [UInt8](repeating: 0xAB, count: 1)
        values.withUnsafeBytes { bytes += $0 }
        let path = NSTemporaryDirectory() + "lethe-alignment-\(getpid()).bin"
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = try MappedFile(path: path)
        let view = Tensor(dtype: .float32, shape: [5], storage: TensorStorage(file: file, range: 1..<21))
        XCTAssertFalse(view.isAligned)
        XCTAssertEqual(view.floatValues(), values)
        XCTAssertEqual(view.withUnsafeBufferPointer(of: Float.self) { Array($0) }, values)
        XCTAssertEqual(view.doubleValues(), values.map(Double.init))
        let aligned = view.aligned()
        XCTAssertTrue(aligned.isAligned)
        XCTAssertTrue(aligned.isBitwiseEqual(to: view))
        XCTAssertTrue(aligned.storage.isAllocated)
        // An aligned tensor is its own aligned form: no copy.
        XCTAssertTrue(aligned.aligned().storage === aligned.storage)
    }
}
