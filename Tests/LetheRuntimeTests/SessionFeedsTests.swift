import Foundation
import LetheCore
import LetheTestSupport
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
        b.output("y", [nil, 3])
        let values = (0..<21).map { Float($0) - 10.5 }
        var bytes = [UInt8](repeating: 0, count: 1)
        values.withUnsafeBytes { bytes += $0 }
        let file = try MappedFile(path: temporaryFile("lethe-unaligned-input", contents: Data(bytes)))
        let view = Tensor(dtype: .float32, shape: [7, 3], storage: TensorStorage(file: file, range: 1..<85))
        XCTAssertFalse(view.isAligned)
        let expected = values.map { max($0, 0) * $0 }
        for chunk in [nil, 2] as [Int?] {
            let session = try InferenceSession(model: b.model, options: .init(threads: 2, maxChunk: chunk))
            XCTAssertEqual(try session.run(["a": view])["y"]?.floatValues(), expected, "chunk \(chunk ?? 0)")
        }
    }

    /// An input read in place from a file gives back its pages chunk by chunk: after a chunked run,
    /// the mapping holds at most the last chunk's pages, and the input still reads the same.
    func testMappedInputPagesAreReleasedChunkByChunk() throws {
        #if os(Linux)
        var b = GraphBuilder()
        b.input("a", [nil, 1024])
        b.node("Neg", ["a"], ["y"])
        b.output("y", [nil, 1024])
        let rows = 64, width = 1024
        let values = (0..<(rows * width)).map { Float($0 % 977) - 488 }
        let file = try MappedFile(
            path: temporaryFile("lethe-mapped-input", contents: values.withUnsafeBytes { Data($0) }))
        let input = Tensor(
            dtype: .float32, shape: [rows, width], storage: TensorStorage(file: file, range: 0..<(rows * width * 4)))
        XCTAssertEqual(input.floatValues(), values)
        let address = Int(bitPattern: input.storage.base)
        XCTAssertGreaterThanOrEqual(try residentKilobytes(of: address), rows * width * 4 / 1024, "read: all resident")
        let session = try InferenceSession(model: b.model, options: .init(threads: 1, maxChunk: 8))
        XCTAssertEqual(try session.run(["a": input])["y"]?.floatValues(), values.map { -$0 })
        // One chunk is 32 kB; a page either side may stay.
        XCTAssertLessThanOrEqual(try residentKilobytes(of: address), 8 * width * 4 / 1024 + 8)
        XCTAssertEqual(input.floatValues(), values, "released pages read back from the file")
        #endif
    }

    /// `Rss` of the mapping that holds `address`, from /proc/self/smaps.
    private func residentKilobytes(of address: Int) throws -> Int {
        // /proc files report no size, so they are read to their end rather than by their length.
        guard let handle = FileHandle(forReadingAtPath: "/proc/self/smaps") else { throw XCTSkip("no /proc") }
        defer { try? handle.close() }
        let text = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
        var inside = false
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if let range = fields.first, range.contains("-"), !range.hasSuffix(":") {
                let bounds = range.split(separator: "-").compactMap { Int($0, radix: 16) }
                inside = bounds.count == 2 && bounds[0] <= address && address < bounds[1]
            } else if inside, fields.first == "Rss:", fields.count >= 2, let kilobytes = Int(fields[1]) {
                return kilobytes
            }
        }
        throw XCTSkip("no mapping holds the input")
    }

    /// Chunks copy their inputs into the previous chunk's buffers: the outputs agree with the whole
    /// batch, a computed one and one that passes the input through (Flatten), chunk by chunk.
    func testChunkInputsAreReusedOnlyWhenFree() throws {
        for viewed in [true, false] {
            var b = GraphBuilder()
            b.input("a", [nil, 3])
            b.node("Relu", ["a"], ["r"])
            b.node("Mul", ["r", "a"], ["y"])
            b.output("y", [nil, 3])
            if viewed {
                b.node("Flatten", ["a"], ["flat"], [("axis", .int(1))])
                b.output("flat", [nil, 3])
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
