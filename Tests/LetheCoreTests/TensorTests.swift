import XCTest
@testable import LetheCore
import LetheTestSupport

final class TensorTests: XCTestCase {
    func testByteCountRejectsOverflowAndNegativeDims() {
        XCTAssertEqual(Tensor.byteCount(dtype: .float32, shape: [2, 3]), 24)
        XCTAssertEqual(Tensor.byteCount(dtype: .float32, shape: []), 4)
        XCTAssertEqual(Tensor.byteCount(dtype: .float32, shape: [0, 5]), 0)
        XCTAssertNil(Tensor.byteCount(dtype: .float64, shape: [Int.max / 4, 3]))
        XCTAssertNil(Tensor.byteCount(dtype: .float32, shape: [-1]))
    }

    func testCopyOnWriteLeavesOtherCopiesAlone() {
        let a = Tensor(shape: [3], values: [Float(1), 2, 3])
        var b = a
        b.withUnsafeMutableBufferPointer(of: Float.self) { $0[0] = 9 }
        XCTAssertEqual(a.floatValues(), [1, 2, 3])
        XCTAssertEqual(b.floatValues(), [9, 2, 3])
    }

    func testMappedTensorIsCopiedOnWriteAndFileUntouched() throws {
        let values: [Float] = [1, 2, 3, 4]
        let path = try temporaryFile("lethe-core", contents: values.withUnsafeBytes { Data($0) })
        let file = try MappedFile(path: path)
        var tensor = Tensor(dtype: .float32, shape: [2, 2], storage: TensorStorage(file: file, range: 0..<16))
        XCTAssertTrue(tensor.storage.mappedFile === file)
        tensor.withUnsafeMutableBufferPointer(of: Float.self) { $0[3] = -1 }
        XCTAssertEqual(tensor.floatValues(), [1, 2, 3, -1])
        let onDisk = try Data(contentsOf: URL(fileURLWithPath: path))
        XCTAssertEqual(onDisk.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }, values)
    }

    func testByteSwapAndIntegerViews() {
        let t = Tensor(shape: [2], values: [UInt16(0x0102), 0x0A0B])
        XCTAssertEqual(t.byteSwapped().int64Values(), [0x0201, 0x0B0A])
        XCTAssertEqual(Tensor(shape: [3], values: [Int8(-3), 0, 7]).floatValues(), [-3, 0, 7])
    }

    func testSampleSetBatchAndSubset() {
        let inputs = Tensor(shape: [4, 2], values: [Float(0), 1, 10, 11, 20, 21, 30, 31])
        let set = SampleSet(inputs: inputs, labels: [0, 1, 2, 1])
        XCTAssertEqual(set.batch(1..<3).floatValues(), [10, 11, 20, 21])
        let picked = set.subset([3, 0])
        XCTAssertEqual(picked.inputs.floatValues(), [30, 31, 0, 1])
        XCTAssertEqual(picked.labels, [1, 0])
        XCTAssertEqual(set.classes, [0, 1, 2])
    }
}
