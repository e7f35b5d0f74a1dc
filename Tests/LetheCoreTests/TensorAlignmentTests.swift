import Foundation
import LetheCore
import LetheTestSupport
import XCTest

/// Views into files written by other tools may start at any byte; element reads still see the
/// right values, through an aligned copy, while byte copies use the view as it is.
final class TensorAlignmentTests: XCTestCase {
    func testUnalignedViewsReadTheirElements() throws {
        let values: [Float] = [1.5, -2, 3.25, 1e-3, 7]
        var bytes = [UInt8](repeating: 0xAB, count: 1)
        values.withUnsafeBytes { bytes += $0 }
        let file = try MappedFile(path: temporaryFile("lethe-alignment", contents: Data(bytes)))
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

    /// The copy made for keeping drops the file pages it read; the view still reads its values after
    /// (they come back from the file), and the pages of its neighbours too.
    func testAlignedForKeepingLeavesTheFileReadable() throws {
        let count = 3000 // three pages and more
        let values = (0..<count).map { Float($0) * 0.5 - 7 }
        var bytes = [UInt8](repeating: 0xCD, count: 3)
        values.withUnsafeBytes { bytes += $0 }
        let file = try MappedFile(path: temporaryFile("lethe-keeping", contents: Data(bytes)))
        let view = Tensor(
            dtype: .float32, shape: [count], storage: TensorStorage(file: file, range: 3..<(3 + 4 * count)))
        let header = Tensor(dtype: .uint8, shape: [3], storage: TensorStorage(file: file, range: 0..<3))
        let kept = view.alignedForKeeping()
        XCTAssertTrue(kept.isAligned)
        XCTAssertEqual(kept.floatValues(), values)
        XCTAssertEqual(view.floatValues(), values)
        XCTAssertEqual(header.withUnsafeBytes { Array($0) }, [0xCD, 0xCD, 0xCD])
        // Aligned tensors are kept as they are.
        XCTAssertTrue(kept.alignedForKeeping().storage === kept.storage)
    }
}
