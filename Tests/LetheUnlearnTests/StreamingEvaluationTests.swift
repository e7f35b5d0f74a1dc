import Foundation
import LetheCore
import LetheIR
import LetheNumPy
import LetheONNX
import XCTest
@testable import LetheUnlearn

/// `ClassifierEvaluation.evaluate(source:)`, which reads the next batch on another thread while the
/// model runs the current one, against the in-memory evaluation (also run under the thread sanitizer).
final class StreamingEvaluationTests: XCTestCase {
    /// Batches handed out of a `SampleSet`, optionally dropping some samples as a skipping source
    /// would, and counting the batches read.
    private final class Source: SampleSource, @unchecked Sendable {
        let samples: SampleSet
        let dropped: Set<Int>
        private let lock = NSLock()
        private(set) var reads = 0

        init(_ samples: SampleSet, dropping dropped: Set<Int> = []) {
            self.samples = samples
            self.dropped = dropped
        }

        var count: Int { samples.count }

        func load(_ range: Range<Int>) throws -> SampleSet {
            lock.lock(); reads += 1; lock.unlock()
            return samples.subset(range.filter { !dropped.contains($0) })
        }
    }

    private func fixture() throws -> (Model, SampleSet) {
        let root = TestSupport.packageRoot
        let model = try ONNXFormat.read(path: root.appendingPathComponent("samples/fashion_cnn.onnx").path).model
        let arrays = try NPZFormat.readArrays(path: root.appendingPathComponent("samples/fashion_test.npz").path)
        let x = try XCTUnwrap(arrays.first { $0.name == "x" }?.tensor)
        let y = try XCTUnwrap(arrays.first { $0.name == "y" }?.tensor).int64Values().map { Int($0) }
        let picked = Array(stride(from: 0, to: y.count, by: 5)) // 200 samples, every class
        let all = SampleSet(inputs: Tensor(shape: x.shape, values: x.floatValues().map { $0 / 255 }), labels: y)
        return (model, all.subset(picked))
    }

    func testStreamedEvaluationEqualsTheInMemoryOne() throws {
        let (model, samples) = try fixture()
        let whole = try ClassifierEvaluation.evaluate(model: model, samples: samples, batchSize: 64, threads: 2)
        let source = Source(samples)
        let streamed = try ClassifierEvaluation.evaluate(model: model, source: source, batchSize: 23, threads: 2)
        XCTAssertEqual(streamed, whole)
        XCTAssertEqual(source.reads, 9) // ⌈200 / 23⌉
    }

    func testSamplesASourceLeavesOutAreNotScored() throws {
        let (model, samples) = try fixture()
        let dropped: Set<Int> = [0, 1, 2, 50, 199]
        let kept = samples.labels.indices.filter { !dropped.contains($0) }
        let expected = try ClassifierEvaluation.evaluate(
            model: model, samples: samples.subset(kept), batchSize: 64, threads: 2)
        let streamed = try ClassifierEvaluation.evaluate(
            model: model, source: Source(samples, dropping: dropped), batchSize: 3, threads: 2)
        XCTAssertEqual(streamed, expected)
        XCTAssertEqual(streamed.samples, 195)
    }

    func testAReadErrorStopsTheEvaluation() throws {
        struct Failing: SampleSource {
            var count: Int { 10 }
            func load(_ range: Range<Int>) throws -> SampleSet {
                if range.contains(7) { throw UsageError("sample 7 is unreadable") }
                return SampleSet(
                    inputs: Tensor(zeros: .float32, shape: [range.count, 1, 28, 28]),
                    labels: Array(repeating: 0, count: range.count))
            }
        }
        let (model, _) = try fixture()
        XCTAssertThrowsError(
            try ClassifierEvaluation.evaluate(model: model, source: Failing(), batchSize: 4, threads: 1)
        ) {
            XCTAssertEqual("\($0)", "sample 7 is unreadable")
        }
    }
}
