import Foundation
import LetheCore
import LetheIR
import LetheONNX
import XCTest
@testable import LetheUnlearn

/// Runs batches side by side, each after a pause that makes later batches finish first, and
/// fires every tap with the batch itself; batch `failing` throws instead of running.
private struct ShuffledExecutor: ModelExecutor {
    var failing: Int? = nil
    struct Failure: Error {}

    func concurrentBatches(sampleShape: [Int], batchSize: Int) -> Int { 3 }

    func run(_ batch: Tensor, taps: [InputTap]) throws -> Tensor {
        XCTFail("a concurrent pass runs batches through run(_:taps:threads:)")
        return batch
    }

    func run(_ batch: Tensor, taps: [InputTap], threads: Int) throws -> Tensor {
        XCTAssertEqual(threads, 1)
        let first = Int(batch.floatValues()[0])
        if first / 4 == failing { throw Failure() }
        usleep(UInt32(2000 * (3 - first / 4 % 3)))
        for tap in taps { try tap.body(batch) }
        return batch
    }
}

/// Values appended from several threads.
private final class Recorder: @unchecked Sendable {
    private let lock = NSLock()
    private var recorded: [Int] = []
    func append(_ value: Int) { lock.lock(); recorded.append(value); lock.unlock() }
    var values: [Int] { lock.lock(); defer { lock.unlock() }; return recorded }
}

final class ConcurrentBatchTests: XCTestCase {
    /// Samples 0..<n, one value each (the value is the sample's index).
    private func samples(_ n: Int) -> SampleSet {
        SampleSet(inputs: Tensor(shape: [n, 1], values: (0..<n).map(Float.init)), labels: Array(repeating: 0, count: n))
    }

    /// `body` sees every batch once, in order, and taps that take turns see them in order too, while
    /// the batches themselves finish out of order.
    func testBatchesSideBySideReachBodyAndTurnsInOrder() throws {
        let seen = Recorder()
        let tap = InputTap(node: "n", nodeIndex: 0, input: 0) { tensor in
            try BatchContext.inTurn(key: 0) { seen.append(Int(tensor.floatValues()[0])) }
        }
        var ranges: [Range<Int>] = []
        try ShuffledExecutor().forEachBatch(of: samples(30), batchSize: 4, taps: [tap], tapsTakeTurns: true) {
            range, output in
            XCTAssertEqual(output.floatValues(), range.map(Float.init))
            ranges.append(range)
        }
        XCTAssertEqual(ranges, stride(from: 0, to: 30, by: 4).map { $0..<min(30, $0 + 4) })
        XCTAssertEqual(seen.values, Array(stride(from: 0, to: 30, by: 4)))
    }

    /// Taps that do not take turns keep the pass to one batch at a time.
    func testTapsThatDoNotTakeTurnsRunInOrder() throws {
        let seen = Recorder()
        let tap = InputTap(node: "n", nodeIndex: 0, input: 0) { tensor in
            seen.append(Int(tensor.floatValues()[0]))
        }
        struct Sequential: ModelExecutor {
            func concurrentBatches(sampleShape: [Int], batchSize: Int) -> Int { 3 }
            func run(_ batch: Tensor, taps: [InputTap]) throws -> Tensor {
                for tap in taps { try tap.body(batch) }
                return batch
            }
        }
        try Sequential().forEachBatch(of: samples(10), batchSize: 2, taps: [tap]) { _, _ in }
        XCTAssertEqual(seen.values, [0, 2, 4, 6, 8])
    }

    /// A failing batch stops the pass with its own error, and batches waiting for its turn give up
    /// rather than wait for it forever.
    func testAFailingBatchStopsThePass() {
        let tap = InputTap(node: "n", nodeIndex: 0, input: 0) { _ in try BatchContext.inTurn(key: 0) {} }
        XCTAssertThrowsError(
            try ShuffledExecutor(failing: 2).forEachBatch(
                of: samples(40), batchSize: 4, taps: [tap], tapsTakeTurns: true
            ) { _, _ in }
        ) { error in XCTAssertTrue(error is ShuffledExecutor.Failure, "\(error)") }
    }

    /// The statistics of a pass whose batches run side by side on the sample CNN, with sampled
    /// positions: the same rows as one batch at a time (the draws follow the batches), the same
    /// Grams but for float32 rounding, and the same bits from one run to the next.
    func testStatisticsSideBySideMatchOneBatchAtATime() throws {
        let path = TestSupport.packageRoot.appendingPathComponent("samples/fashion_cnn.onnx").path
        let model = try ONNXFormat.read(path: path).model
        let layers = LayerDiscovery.discover(in: model).layers
        let x = Tensor(shape: [200, 1, 28, 28], values: (0..<(200 * 784)).map { Float(($0 * 7919) % 256) / 255 })
        let retain = SampleSet(inputs: x, labels: Array(repeating: 0, count: 200))
        let forget = SampleSet(inputs: x, labels: Array(repeating: 1, count: 200))
        let collector = StatisticsCollector(layers: layers, positionCap: 37, seed: 3, batchSize: 16)
        let side = try RuntimeExecutor(model: model, threads: 2)
        XCTAssertEqual(side.concurrentBatches(sampleShape: [1, 28, 28], batchSize: 16), 2)
        let inTurn = try RuntimeExecutor(model: model, threads: 2, concurrentBatches: false)
        XCTAssertEqual(inTurn.concurrentBatches(sampleShape: [1, 28, 28], batchSize: 16), 1)
        let a = try collector.collect(executor: side, retain: retain, forget: forget)
        let b = try collector.collect(executor: inTurn, retain: retain, forget: forget)
        let again = try collector.collect(executor: side, retain: retain, forget: forget)
        for layer in layers.map(\.name) {
            let (sa, sb, sc) = try (XCTUnwrap(a[layer]), XCTUnwrap(b[layer]), XCTUnwrap(again[layer]))
            XCTAssertEqual(sa.retainRows, sb.retainRows, layer)
            XCTAssertEqual(sa.retain, sc.retain, "\(layer): run to run")
            XCTAssertEqual(sa.forget, sc.forget, "\(layer): run to run")
            for (ga, gb) in zip(sa.retain + sa.forget, sb.retain + sb.forget) {
                let scale = gb.reduce(0) { max($0, abs($1)) }
                let error = zip(ga, gb).reduce(0) { max($0, abs($1.0 - $1.1)) }
                XCTAssertLessThanOrEqual(error, 1e-5 * scale, layer)
            }
        }
    }
}
