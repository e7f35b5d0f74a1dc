import XCTest
import LetheCore
import LetheIR
import LetheFormats

/// `CheckpointDiff` by hand: exact by default, NumPy's `allclose` rule under a tolerance, and type
/// changes never forgiven.
final class CheckpointDiffTests: XCTestCase {
    private func model(_ tensors: [(String, Tensor)]) -> Model {
        Model(graph: Graph(initializers: tensors.map { Initializer(name: $0.0, tensor: $0.1) }))
    }

    func testToleranceFollowsAllclose() {
        let a = model([
            ("w", Tensor(shape: [3], values: [Float(1), 100, 0])), ("b", Tensor(shape: [1], values: [Float(2)]))
        ])
        let b = model([
            ("w", Tensor(shape: [3], values: [Float(1.00001), 100.001, 0])),
            ("b", Tensor(shape: [1], values: [Float(2)]))
        ])
        let exact = CheckpointDiff(a, b)
        XCTAssertFalse(exact.isEqual)
        XCTAssertEqual(exact.changed.map(\.name), ["w"])
        XCTAssertEqual(exact.changed[0].fractionChanged ?? 0, 2.0 / 3.0, accuracy: 1e-12)
        XCTAssertEqual(exact.changed[0].maxAbsoluteDifference ?? 0, 0.001, accuracy: 1e-5)

        // The largest change, 1e-3 at 100, is inside 1e-5 + 1e-5 · 100.001.
        let close = CheckpointDiff(a, b, tolerance: .init(relative: 1e-5, absolute: 1e-5))
        XCTAssertTrue(close.isEqual)
        XCTAssertEqual(close.closeCount, 1)
        XCTAssertEqual(close.unchangedCount, 1)
        XCTAssertTrue(close.render(firstName: "a", secondName: "b").contains("1 within tolerance"))

        let tight = CheckpointDiff(a, b, tolerance: .init(relative: 1e-6, absolute: 0))
        XCTAssertFalse(tight.isEqual)

        let reshaped = model([
            ("w", Tensor(shape: [1, 3], values: [Float(1), 100, 0])), ("b", Tensor(shape: [1], values: [Float(2)]))
        ])
        XCTAssertEqual(CheckpointDiff(a, reshaped, tolerance: .init(relative: 1, absolute: 1)).changed.count, 1)
    }
}
