import LetheCore
import LetheIR
import Synchronization
import XCTest
@testable import LetheRuntime

/// Collects what a tap sees, across threads.
final class TapRecorder: Sendable {
    private let seen = Mutex<[Tensor]>([])
    private let byNode = Mutex<[Int: Tensor]>([:])
    var tensors: [Tensor] { seen.withLock { $0 } }
    var count: Int { byNode.withLock { $0.count } }
    func record(_ node: Int, _ tensor: Tensor) -> Bool {
        byNode.withLock { $0.updateValue(tensor, forKey: node) == nil }
    }
    func tensor(for node: Int) -> Tensor? { byNode.withLock { $0[node] } }
    func tap(_ node: String, _ port: ActivationTap.Port) -> ActivationTap {
        ActivationTap(node: node, port: port) { [self] tensor in seen.withLock { $0.append(tensor) } }
    }
}

final class TapTests: XCTestCase {
    /// x → Conv → BatchNormalization → Relu → Conv(1×1) → GlobalAveragePool → Flatten → Gemm → y
    private func convNet() -> (Model, Tensor, Tensor, [Float], [Float]) {
        var g = GraphBuilder()
        g.input("x", [nil, 3, 8, 8])
        let w = randomTensor([4, 3, 3, 3], seed: 1)
        g.constant("w", w)
        g.constant("b", randomTensor([4], seed: 2))
        let scale = randomFloats(4, seed: 3).map { $0 + 1.5 }, shift = randomFloats(4, seed: 4)
        let mean = randomFloats(4, seed: 5), variance = randomFloats(4, seed: 6).map { $0 + 1.2 }
        g.constant("scale", Tensor(shape: [4], values: scale))
        g.constant("shift", Tensor(shape: [4], values: shift))
        g.constant("mean", Tensor(shape: [4], values: mean))
        g.constant("var", Tensor(shape: [4], values: variance))
        g.constant("w2", randomTensor([5, 4, 1, 1], seed: 7))
        g.constant("fc", randomTensor([3, 5], seed: 8))
        g.node("Conv", ["x", "w", "b"], ["c1"], name: "conv1", [("pads", .ints([1, 1, 1, 1]))])
        g.node(
            "BatchNormalization", ["c1", "scale", "shift", "mean", "var"], ["bn1"], name: "bn1",
            [("epsilon", .float(1e-3))])
        g.node("Relu", ["bn1"], ["r1"], name: "relu1")
        g.node("Conv", ["r1", "w2"], ["c2"], name: "conv2")
        g.node("GlobalAveragePool", ["c2"], ["p"], name: "pool")
        g.node("Flatten", ["p"], ["f"], name: "flatten")
        g.node("Gemm", ["f", "fc"], ["y"], name: "fc", [("transB", .int(1))])
        g.outputs.append(ValueInfo(name: "y", dtype: .float32, shape: [.symbolic("batch"), .fixed(3)]))
        let a = (0..<4).map { scale[$0] / (variance[$0] + 1e-3).squareRoot() }
        let b = (0..<4).map { shift[$0] - mean[$0] * a[$0] }
        return (g.model, randomTensor([2, 3, 8, 8], seed: 9), w, a, b)
    }

    func testTapsSeeTheOriginalGraphValuesDespiteFolding() throws {
        let (model, x, w, a, b) = convNet()
        let session = try InferenceSession(model: model, options: .init(threads: 2))
        let plain = try session.run(["x": x])["y"]!

        // Taps on a Conv input do not stop BatchNorm folding: the result is bit-identical.
        let conv2Input = TapRecorder()
        let tapped = try session.run(["x": x], taps: [conv2Input.tap("conv2", .input(0))])["y"]!
        XCTAssertTrue(tapped.isBitwiseEqual(to: plain))
        XCTAssertEqual(conv2Input.tensors.count, 1)

        // The folded-away Conv output is still visible, and BN∘Relu of it is what conv2 reads.
        let convOut = TapRecorder(), bnOut = TapRecorder(), firstInput = TapRecorder()
        let withTaps = try session.run(
            ["x": x],
            taps: [
                convOut.tap("conv1", .output(0)), bnOut.tap("bn1", .output(0)),
                firstInput.tap("conv1", .input(0))
            ])["y"]!
        XCTAssertLessThanOrEqual(relativeError(withTaps.floatValues(), plain.floatValues()), 1e-6)
        XCTAssertTrue(firstInput.tensors[0].isBitwiseEqual(to: x))
        let expectedConv = naiveConv(
            x, w, randomFloats(4, seed: 2), stride: [1, 1], pads: [1, 1, 1, 1], dilation: [1, 1], group: 1)
        assertClose(convOut.tensors[0], expectedConv.values, shape: [2, 4, 8, 8])
        let plane = 64
        let expectedBN = expectedConv.values.enumerated().map { i, v in v * a[(i / plane) % 4] + b[(i / plane) % 4] }
        assertClose(bnOut.tensors[0], expectedBN)
        let relu = conv2Input.tensors[0].floatValues()
        XCTAssertEqual(relu.count, expectedBN.count)
        XCTAssertLessThanOrEqual(relativeError(relu, expectedBN.map { max(0, $0) }), 1e-5)
    }

    func testTapsByIndexOnGemmInputAndUnknownNodes() throws {
        let (model, x, _, _, _) = convNet()
        let session = try InferenceSession(model: model)
        let recorder = TapRecorder()
        let tap = ActivationTap(nodeIndex: 6, port: .input(0)) { [recorder] t in
            XCTAssertEqual(t.shape, [2, 5])
            _ = recorder
        }
        _ = try session.run(["x": x], taps: [tap, recorder.tap("flatten", .output(0))])
        XCTAssertEqual(recorder.tensors.map(\.shape), [[2, 5]])
        XCTAssertThrowsError(try session.run(["x": x], taps: [recorder.tap("nope", .input(0))]))
        XCTAssertThrowsError(try session.run(["x": x], taps: [recorder.tap("conv1", .input(5))]))
    }

    func testLargeBatchesRunInChunksWithTheSameResult() throws {
        let (model, _, _, _, _) = convNet()
        let x = randomTensor([7, 3, 8, 8], seed: 10)
        let whole = try InferenceSession(model: model, options: .init(threads: 2, maxChunk: nil)).run(["x": x])["y"]!
        let recorder = TapRecorder()
        let chunked = try InferenceSession(model: model, options: .init(threads: 2, maxChunk: 3))
            .run(["x": x], taps: [recorder.tap("fc", .input(0))])["y"]!
        XCTAssertEqual(chunked.shape, [7, 3])
        XCTAssertLessThanOrEqual(relativeError(chunked.floatValues(), whole.floatValues()), 1e-6)
        XCTAssertEqual(recorder.tensors.map { $0.shape[0] }, [3, 3, 1])
    }
}
