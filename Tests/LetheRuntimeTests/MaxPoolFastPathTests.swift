import LetheCore
import LetheIR
import XCTest
@testable import LetheRuntime

/// MaxPool without an Indices output takes a branch-free loop; it must give the same values as the
/// loop that tracks indices, NaN included (NaN wins, as in PyTorch).
final class MaxPoolFastPathTests: XCTestCase {
    private func pool(_ x: Tensor, indices: Bool, _ attributes: [(String, Attribute)]) throws -> [Float] {
        var g = GraphBuilder()
        g.input("x", x.shape)
        g.node("MaxPool", ["x"], indices ? ["y", "i"] : ["y"], attributes)
        g.output("y")
        if indices { g.output("i") }
        return try InferenceSession(model: g.model, options: .init(threads: 2)).run(["x": x])["y"]!.floatValues()
    }

    func testValuesMatchTheIndexedLoopWithNaNsAndPadding() throws {
        var values = randomFloats(2 * 3 * 11 * 11, seed: 7)
        for position in [0, 5, 60, 121, 250, 400, 700] { values[position] = .nan }
        values[100] = -.infinity
        let x = Tensor(shape: [2, 3, 11, 11], values: values)
        let settings: [[(String, Attribute)]] = [
            [("kernel_shape", .ints([3, 3])), ("strides", .ints([2, 2])), ("pads", .ints([1, 1, 1, 1]))],
            [("kernel_shape", .ints([2, 3])), ("strides", .ints([1, 2])), ("dilations", .ints([2, 1]))],
            [("kernel_shape", .ints([3, 3])), ("strides", .ints([3, 3])), ("ceil_mode", .int(1))]
        ]
        for attributes in settings {
            let fast = try pool(x, indices: false, attributes), indexed = try pool(x, indices: true, attributes)
            XCTAssertEqual(fast.count, indexed.count)
            for (a, b) in zip(fast, indexed) {
                XCTAssertTrue(a == b || (a.isNaN && b.isNaN), "\(a) vs \(b) for \(attributes.map(\.0))")
            }
            XCTAssertTrue(fast.contains { $0.isNaN })
        }
    }
}
