import LetheCore
import LetheIR
import Synchronization
import XCTest
@testable import LetheRuntime

/// The plan's buffer pool reuses released intermediates, and never one that a tap or an output
/// still holds.
final class BufferPoolTests: XCTestCase {
    /// x → Neg → Abs → Neg → Abs → Neg → y, every intermediate the same size.
    private func chain() -> Model {
        var g = GraphBuilder()
        g.input("x", [nil, 64])
        let ops = ["Neg", "Abs", "Neg", "Abs", "Neg"]
        for (index, op) in ops.enumerated() {
            g.node(
                op, [index == 0 ? "x" : "v\(index - 1)"], [index == ops.count - 1 ? "y" : "v\(index)"],
                name: "n\(index)")
        }
        g.output("y")
        return g.model
    }

    func testReleasedBuffersAreReusedAndHeldOnesAreNot() throws {
        let session = try InferenceSession(model: chain(), options: .init(threads: 1))
        let x = randomTensor([3, 64], seed: 11)
        let expected = x.floatValues().map { -abs($0) }
        let first = try session.run(["x": x])["y"]!
        XCTAssertEqual(first.floatValues(), expected)
        let plan = try XCTUnwrap(session.cachedPlan(for: []))
        XCTAssertGreaterThan(plan.pool.freeCount, 0, "released intermediates wait for the next run")

        // The first output is the caller's: later runs must not write into it.
        let second = try session.run(["x": randomTensor([3, 64], seed: 12)])["y"]!
        XCTAssertEqual(first.floatValues(), expected)
        XCTAssertNotEqual(second.floatValues(), expected)

        // A tap that keeps its tensor keeps its values, although same-sized buffers are reused after it.
        let recorder = TapRecorder()
        _ = try session.run(["x": x], taps: [recorder.tap("n2", .input(0))])
        XCTAssertEqual(recorder.tensors.count, 1)
        XCTAssertEqual(recorder.tensors[0].floatValues(), x.floatValues().map { abs($0) })

        // A tapped intermediate is released after its last reader like any other (its tap has run by
        // then): n3's output takes the buffer of n2's tapped input.
        let addresses = Mutex<[String: Int]>([:])
        let taps = ["n2", "n4"].map { node in
            ActivationTap(node: node, port: .input(0)) { tensor in
                let address = Int(bitPattern: tensor.floats)
                addresses.withLock { $0[node] = address }
            }
        }
        _ = try session.run(["x": x], taps: taps)
        let seen = addresses.withLock { $0 }
        XCTAssertEqual(seen.count, 2)
        XCTAssertEqual(seen["n2"], seen["n4"], "the tapped buffer was reused within the run")

        // A different batch size drops the old sizes at the end of its run.
        _ = try session.run(["x": randomTensor([5, 64], seed: 13)])
        let sizes = Set(plan.pool.freeSizes)
        XCTAssertEqual(sizes, [5 * 64 * 4])
    }

    /// A Conv → MaxPool run as one step over a small map (the whole batch convolved, then pooled)
    /// hands its map back to the pool: freed, a map of 4 MiB or more went back to the system and
    /// faulted in its pages again every chunk.
    func testFusedConvolutionPoolReturnsItsMap() throws {
        var g = GraphBuilder()
        g.input("x", [nil, 3, 8, 8])
        g.constant("w", randomTensor([16, 3, 3, 3], seed: 31))
        g.node("Conv", ["x", "w"], ["c"], name: "conv", [("pads", .ints([1, 1, 1, 1]))])
        g.node("MaxPool", ["c"], ["y"], name: "pool", [("kernel_shape", .ints([2, 2])), ("strides", .ints([2, 2]))])
        g.output("y")
        let session = try InferenceSession(model: g.model, options: .init(threads: 1))
        let x = randomTensor([2, 3, 8, 8], seed: 32)
        let first = try session.run(["x": x])["y"]!
        let plan = try XCTUnwrap(session.cachedPlan(for: []))
        try XCTSkipUnless(plan.steps.contains { $0.kernel is ConvPoolKernel }, "no oneDNN: Conv and MaxPool run apart")
        // 2 images × 16 channels × 8 × 8, float32 (one block of 16 channels: no padding).
        XCTAssertTrue(plan.pool.freeSizes.contains(2 * 16 * 8 * 8 * 4), "sizes \(plan.pool.freeSizes)")
        let second = try session.run(["x": x])["y"]!
        XCTAssertEqual(second.floatValues(), first.floatValues(), "the reused map gives the same outputs")
    }

    /// Runs side by side: one run's end keeps the sizes the other has asked for so far; the sizes
    /// no run used are dropped once the last run ends.
    func testOverlappingRunsKeepEachOthersSizes() {
        let pool = BufferPool()
        func give(_ floats: Int) {
            var slot: Tensor? = Tensor(zeros: .float32, shape: [floats])
            pool.recycle(&slot)
        }
        pool.beginRun()
        give(8) // a size nobody asks for in the next round
        pool.endRun()
        XCTAssertEqual(Set(pool.freeSizes), [32])
        pool.beginRun() // A
        pool.beginRun() // B
        XCTAssertNil(pool.take(100)) // B asks for 100 floats' bytes before A ends
        give(25) // A gives back 100 bytes
        pool.endRun() // A ends while B runs: nothing is dropped
        XCTAssertEqual(Set(pool.freeSizes), [32, 100])
        give(50) // B gives back 200 bytes
        pool.endRun() // B, the last: 32 bytes went unused since the last pruning
        XCTAssertEqual(Set(pool.freeSizes), [100, 200])
    }
}
