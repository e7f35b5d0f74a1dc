import Foundation
import LetheCore
import LetheIR
import XCTest
@testable import LetheRuntime

/// `lethe run`'s input matching: one array per runtime input, by name, others ignored.
final class SessionFeedsTests: XCTestCase {
    func testFeedsAreMatchedByInputName() throws {
        var b = GraphBuilder()
        b.input("a", [nil, 2])
        b.input("b", [nil, 2])
        b.node("Add", ["a", "b"], ["y"])
        b.output("y")
        let session = try InferenceSession(model: b.model)
        let a = randomTensor([3, 2], seed: 1), c = randomTensor([3, 2], seed: 2)
        let feeds = try session.feeds(from: [("unused", randomTensor([1], seed: 3)), ("b", c), ("a", a)])
        XCTAssertEqual(Set(feeds.keys), ["a", "b"])
        XCTAssertTrue(feeds["a"]!.isBitwiseEqual(to: a))
        XCTAssertTrue(feeds["b"]!.isBitwiseEqual(to: c))
        XCTAssertThrowsError(try session.feeds(from: [("a", a)])) { error in
            XCTAssertEqual("\(error)", "no array named 'b' (the model's inputs: a, b)")
        }
    }

    /// An input whose bytes are not aligned (an `.npz` member read in place) runs whole and in
    /// chunks, copied once either way, to the same outputs as an aligned copy.
    func testUnalignedInputsRunWholeAndInChunks() throws {
        var b = GraphBuilder()
        b.input("a", [nil, 3])
        b.node("Relu", ["a"], ["r"])
        b.node("Mul", ["r", "a"], ["y"])
        b.output("y")
        let values = (0..<21).map { Float($0) - 10.5 }
        var bytes = [UInt8](repeating: 0, count: 1)
        values.withUnsafeBytes { bytes += $0 }
        let path = NSTemporaryDirectory() + "lethe-unaligned-input-\(getpid()).bin"
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = try MappedFile(path: path)
        let view = Tensor(dtype: .float32, shape: [7, 3], storage: TensorStorage(file: file, range: 1..<85))
        XCTAssertFalse(view.isAligned)
        let expected = values.map { max($0, 0) * $0 }
        for chunk in [nil, 2] as [Int?] {
            let session = try InferenceSession(model: b.model, options: .init(threads: 2, maxChunk: chunk))
            XCTAssertEqual(try session.run(["a": view])["y"]?.floatValues(), expected, "chunk \(chunk ?? 0)")
        }
    }

    /// Chunks copy their inputs into the previous chunk's buffers: the outputs agree with the whole
    /// batch, a computed one and one that passes the input through (Flatten), chunk by chunk.
    func testChunkInputsAreReusedOnlyWhenFree() throws {
        for viewed in [true, false] {
            var b = GraphBuilder()
            b.input("a", [nil, 3])
            b.node("Relu", ["a"], ["r"])
            b.node("Mul", ["r", "a"], ["y"])
            b.output("y")
            if viewed {
                b.node("Flatten", ["a"], ["flat"], [("axis", .int(1))])
                b.output("flat")
            }
            let a = randomTensor([7, 3], seed: 5)
            let whole = try InferenceSession(model: b.model, options: .init(threads: 1, maxChunk: nil)).run(["a": a])
            let chunked = try InferenceSession(model: b.model, options: .init(threads: 1, maxChunk: 2)).run(["a": a])
            XCTAssertEqual(chunked["y"]?.floatValues(), whole["y"]?.floatValues())
            if viewed { XCTAssertEqual(chunked["flat"]?.floatValues(), a.floatValues()) }
        }
    }

    func testOutputArraysFollowTheGraphsOutputOrder() throws {
        var b = GraphBuilder()
        b.input("a", [nil, 2])
        b.node("Relu", ["a"], ["r"])
        b.node("Neg", ["a"], ["n"])
        b.output("n")
        b.output("r")
        let session = try InferenceSession(model: b.model)
        let results = try session.run(["a": randomTensor([3, 2], seed: 4)])
        let arrays = session.outputArrays(results)
        XCTAssertEqual(arrays.map(\.name), ["n", "r"])
        XCTAssertTrue(arrays[0].tensor.isBitwiseEqual(to: results["n"]!))
        XCTAssertEqual(session.outputArrays(["r": results["r"]!]).map(\.name), ["r"])
    }
}
