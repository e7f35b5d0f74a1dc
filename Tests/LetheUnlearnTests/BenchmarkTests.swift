import Foundation
import LetheCore
import LetheNumPy
import LetheONNX
import XCTest
@testable import LetheUnlearn

/// The job of bench/unlearn/reference_bench.py (sample CNN, forget class 3, S = 900, α = 100, 3, all rows),
/// timed. Runs only with LETHE_BENCH=1, best in release: `LETHE_BENCH=1 swift test -c release --filter BenchmarkTests`.
final class BenchmarkTests: XCTestCase {
    func testSampleCNNUnlearningTime() throws {
        guard ProcessInfo.processInfo.environment["LETHE_BENCH"] == "1" else { throw XCTSkip("set LETHE_BENCH=1") }
        let root = TestSupport.packageRoot
        let model = try ONNXFormat.read(path: root.appendingPathComponent("samples/fashion_cnn.onnx").path).model
        let data = Dictionary(
            try NPZFormat.readArrays(path: root.appendingPathComponent("samples/fashion_train.npz").path).map {
                ($0.name, $0.tensor)
            },
            uniquingKeysWith: { a, _ in a })
        let x = try XCTUnwrap(data["x"])
        let train = SampleSet(
            inputs: Tensor(shape: x.shape, values: x.floatValues().map { $0 / 255 }),
            labels: try XCTUnwrap(data["y"]).int64Values().map { Int($0) })
        var configuration = UnlearningConfiguration(forgetClasses: [3])
        configuration.method = .published
        configuration.positionCap = nil
        configuration.batchSize = Int(ProcessInfo.processInfo.environment["LETHE_BENCH_BATCH"] ?? "") ?? 64
        // The machine is shared: the best of a few repetitions is the least disturbed.
        let repetitions = Int(ProcessInfo.processInfo.environment["LETHE_BENCH_REPEAT"] ?? "") ?? 3
        var forward = Double.infinity
        let executor = try RuntimeExecutor(model: model, threads: nil)
        let probe = train.subset(Array(0..<1200))
        for _ in 0..<repetitions {
            let start = Date()
            _ = try executor.logits(of: probe, batchSize: configuration.batchSize)
            forward = min(forward, Date().timeIntervalSince(start))
        }
        print(String(format: "lethe_bench: plain forward of 1200 samples %.3fs", forward))
        var best: (total: Double, timings: UnlearningReport.Timings)?
        var result: UnlearningResult!
        for _ in 0..<repetitions {
            let started = Date()
            result = try Unlearner(model: model, configuration: configuration).run(train: train)
            let total = Date().timeIntervalSince(started)
            if best == nil || total < best!.total { best = (total, result.report.timings) }
        }
        let t = best!.timings
        print(
            String(
                format:
                    "lethe_bench: model=fashion_cnn S=900 retain=%d forget=%d layers=%d statistics=%.3fs eigen=%.3fs patch=%.3fs unlearn=%.3fs (best of %d)",
                result.report.retainSamples, result.report.forgetSamples, result.report.layers.count,
                t.statistics, t.decomposition, t.projection, best!.total, repetitions))
        let expected = Dictionary(
            try NPZFormat.readArrays(
                path: root.appendingPathComponent("formats/models/unlearn/fashion_cnn_default.patched.npz").path
            ).map { ($0.name, $0.tensor) },
            uniquingKeysWith: { a, _ in a })
        var worst = 0.0
        for (name, tensor) in result.patchedWeights {
            let b = try XCTUnwrap(expected[name]).doubleValues()
            let scale = b.reduce(0) { max($0, abs($1)) }
            worst = max(worst, TestSupport.maxAbsDifference(tensor.doubleValues(), b) / scale)
        }
        print(String(format: "lethe_bench: max_rel_diff_vs_fixture=%.2e", worst))
        XCTAssertLessThan(worst, 1e-4)
    }
}

/// Forgets each class of the sample model in turn and prints test ACC_r / ACC_f before and after.
/// The issue's every-class check on the sample model; runs only with LETHE_BENCH=classes (slow in debug builds).
final class EveryClassTests: XCTestCase {
    func testEveryClassOfTheSampleModel() throws {
        guard ProcessInfo.processInfo.environment["LETHE_BENCH"] == "classes" else {
            throw XCTSkip("set LETHE_BENCH=classes")
        }
        let root = TestSupport.packageRoot
        let model = try ONNXFormat.read(path: root.appendingPathComponent("samples/fashion_cnn.onnx").path).model
        func load(_ name: String) throws -> SampleSet {
            let data = Dictionary(
                try NPZFormat.readArrays(path: root.appendingPathComponent("samples/\(name)").path).map {
                    ($0.name, $0.tensor)
                },
                uniquingKeysWith: { a, _ in a })
            let x = try XCTUnwrap(data["x"])
            return SampleSet(
                inputs: Tensor(shape: x.shape, values: x.floatValues().map { $0 / 255 }),
                labels: try XCTUnwrap(data["y"]).int64Values().map { Int($0) })
        }
        let train = try load("fashion_train.npz"), test = try load("fashion_test.npz")
        // Each class: the defaults, then --search, then --search --passes 2, until ACC_f < 2% with
        // ACC_r within 3 points of the original (the issue's goal).
        for forget in 0..<10 {
            var met = false
            for (search, passes) in [(false, 1), (true, 1), (true, 2)] where !met {
                var configuration = UnlearningConfiguration(forgetClasses: [forget])
                configuration.method = .published
                configuration.search = search
                configuration.passes = passes
                let result = try Unlearner(model: model, configuration: configuration).run(train: train, test: test)
                let t = try XCTUnwrap(result.report.test)
                met =
                    (t.after.forgetAccuracy ?? 1) < 0.02
                    && (t.after.retainAccuracy ?? 0) >= (t.before.retainAccuracy ?? 1) - 0.03
                print(
                    String(
                        format:
                            "every_class: forget=%d search=%d passes=%d alpha=(%g,%g) ACC_r %.3f→%.3f ACC_f %.3f→%.3f MIA %.3f→%.3f time=%.2fs %@",
                        forget, search ? 1 : 0, passes, result.report.chosenAlphaRetain,
                        result.report.chosenAlphaForget,
                        t.before.retainAccuracy ?? 0, t.after.retainAccuracy ?? 0, t.before.forgetAccuracy ?? 0,
                        t.after.forgetAccuracy ?? 0,
                        t.membershipBefore?.efficacy ?? -1, t.membershipAfter?.efficacy ?? -1,
                        result.report.timings.total,
                        met ? "ok" : "short"))
            }
            XCTAssertTrue(met, "class \(forget) is not forgotten by any setting")
        }
    }
}
