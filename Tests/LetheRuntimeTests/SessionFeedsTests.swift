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
