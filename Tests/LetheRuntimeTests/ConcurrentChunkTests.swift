import LetheCore
import LetheIR
import LetheTestSupport
import XCTest
@testable import LetheRuntime

/// Chunks of small images run side by side, one per thread (`ChunkConcurrency`).
final class ConcurrentChunkTests: XCTestCase {
    /// A small convolutional model on `size × size` single-channel images.
    private func model(size: Int) -> Model {
        var b = GraphBuilder()
        b.input("x", [nil, 1, size, size])
        b.constant("w", randomTensor([4, 1, 3, 3], seed: 5))
        b.constant("bias", randomTensor([4], seed: 6))
        b.constant("fc", randomTensor([4 * (size - 2) * (size - 2), 3], seed: 7))
        b.constant("shape", Tensor(shape: [2], values: [-1, Int64(4 * (size - 2) * (size - 2))] as [Int64]))
        b.node("Conv", ["x", "w", "bias"], ["c"])
        b.node("Relu", ["c"], ["r"])
        b.node("Reshape", ["r", "shape"], ["flat"])
        b.node("MatMul", ["flat", "fc"], ["y"])
        b.output("y", [nil, 3])
        return b.model
    }

    func testWhichInputsRunSideBySide() {
        XCTAssertEqual(ChunkConcurrency.workers(sampleShapes: [[1, 28, 28]], threads: 2), 2)
        XCTAssertEqual(ChunkConcurrency.workers(sampleShapes: [[3, 32, 32]], threads: 4), 4)
        XCTAssertEqual(ChunkConcurrency.workers(sampleShapes: [[1, 28, 28]], threads: 1), 1)
        XCTAssertEqual(ChunkConcurrency.workers(sampleShapes: [[3, 224, 224]], threads: 2), 1, "large images")
        XCTAssertEqual(ChunkConcurrency.workers(sampleShapes: [[2048]], threads: 2), 1, "not an image")
        XCTAssertEqual(ChunkConcurrency.workers(sampleShapes: [[1, 8, 8], [1, 8, 8]], threads: 2), 1, "two inputs")
    }

    /// Side by side, in order, the same outputs bit for bit as one chunk after another on one thread
    /// each (the last chunk shorter), and close to the whole batch at once.
    func testChunksSideBySideGiveTheSameOutputs() throws {
        let model = model(size: 10)
        let x = randomTensor([37, 1, 10, 10], seed: 8)
        let side = try InferenceSession(model: model, options: .init(threads: 2, maxChunk: 4))
        XCTAssertEqual(side.concurrentRuns(sampleShapes: [[1, 10, 10]]), 2)
        let inTurn = try InferenceSession(model: model, options: .init(threads: 1, maxChunk: 4))
        let whole = try InferenceSession(model: model, options: .init(threads: 1, maxChunk: nil)).run(["x": x])["y"]!
        for _ in 0..<3 {
            let y = try XCTUnwrap(side.run(["x": x])["y"])
            XCTAssertEqual(y.shape, [37, 3])
            XCTAssertTrue(y.isBitwiseEqual(to: try XCTUnwrap(inTurn.run(["x": x])["y"])))
            XCTAssertLessThanOrEqual(
                zip(y.floatValues(), whole.floatValues()).map { abs($0 - $1) }.max()!, 1e-4)
        }
        let off = try InferenceSession(
            model: model, options: .init(threads: 2, maxChunk: 4, concurrentChunks: false))
        XCTAssertEqual(off.concurrentRuns(sampleShapes: [[1, 10, 10]]), 1)
    }

    /// A chunk that fails stops the run with its error; the other worker does not hang.
    func testAFailingChunkStopsTheRun() throws {
        var b = GraphBuilder()
        b.input("x", [nil, 1, 4, 4])
        // Only whole chunks of 4 images reshape to [4, 16]: the last, of 2, cannot.
        b.constant("shape", Tensor(shape: [2], values: [4, 16] as [Int64]))
        b.node("Reshape", ["x", "shape"], ["y"])
        b.output("y", [nil, 16])
        let session = try InferenceSession(model: b.model, options: .init(threads: 2, maxChunk: 4))
        XCTAssertThrowsError(try session.run(["x": randomTensor([18, 1, 4, 4], seed: 9)])) { error in
            XCTAssertTrue("\(error)".contains("Reshape"), "\(error)")
        }
    }
}
