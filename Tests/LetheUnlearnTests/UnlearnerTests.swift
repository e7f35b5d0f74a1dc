import Foundation
import LetheCore
import LetheIR
import XCTest
@testable import LetheUnlearn

/// A one-layer classifier `logits = x · B` run by hand, standing in for the interpreter.
private struct LinearExecutor: ModelExecutor {
    let weight: [Float]
    let d: Int
    let classes: Int

    init(model: Model) throws {
        let tensor = try XCTUnwrap(model.graph.initializer(named: "fc"))
        weight = tensor.floatValues()
        d = tensor.shape[0]
        classes = tensor.shape[1]
    }

    func run(_ batch: Tensor, taps: [InputTap]) throws -> Tensor {
        for tap in taps where tap.node == "fc_node" && tap.input == 0 { try tap.body(batch) }
        let x = batch.floatValues()
        let n = batch.shape[0]
        var logits = [Float](repeating: 0, count: n * classes)
        for r in 0..<n {
            for i in 0..<d {
                for k in 0..<classes { logits[r * classes + k] += x[r * d + i] * weight[i * classes + k] }
            }
        }
        return Tensor(shape: [n, classes], values: logits)
    }
}

final class UnlearnerTests: XCTestCase {
    private let d = 8, classes = 3

    private func model() -> Model {
        var b = [Float](repeating: 0, count: d * classes)
        for k in 0..<classes { b[k * classes + k] = 1 }
        // The shared axes lean towards class 0, so a class stripped of its own axis falls to class 0.
        for i in classes..<d { b[i * classes] = 0.05 }
        let graph = Graph(
            nodes: [Node(name: "fc_node", opType: "MatMul", inputs: ["x", "fc"], outputs: ["logits"])],
            inputs: [ValueInfo(name: "x", dtype: .float32)], outputs: [ValueInfo(name: "logits", dtype: .float32)],
            initializers: [Initializer(name: "fc", tensor: Tensor(shape: [d, classes], values: b))])
        return Model(graph: graph)
    }

    /// Class k points along e_k (retain classes have nothing on the forget class's axis e_2), plus
    /// shared features on the last axes.
    private func samples(perClass: Int, seed: UInt64) -> SampleSet {
        var values: [Float] = [], labels: [Int] = []
        let noise = TestSupport.randomValues(perClass * classes * d, seed: seed)
        for k in 0..<classes {
            for s in 0..<perClass {
                var x = (0..<d).map { Float(noise[(k * perClass + s) * d + $0] * 0.1 + ($0 < classes ? 0 : 0.3)) }
                x[2] = 0
                x[k] += 2
                values += x
                labels.append(k)
            }
        }
        return SampleSet(inputs: Tensor(shape: [labels.count, d], values: values), labels: labels)
    }

    func testForgettingAClassOfALinearModel() throws {
        var configuration = UnlearningConfiguration(forgetClasses: [2])
        configuration.method = .published
        configuration.samples = 60
        configuration.batchSize = 16
        configuration.membershipMaxPerSide = 60
        let unlearner = try Unlearner(model: model(), configuration: configuration) { try LinearExecutor(model: $0) }
        XCTAssertEqual(unlearner.layers.map(\.name), ["fc"])
        let train = samples(perClass: 50, seed: 1), test = samples(perClass: 40, seed: 2)
        let result = try unlearner.run(train: train, test: test)
        let report = result.report
        XCTAssertEqual(report.retainSamples, 60)
        XCTAssertEqual(report.forgetSamples, 50)
        let evaluation = try XCTUnwrap(report.test)
        XCTAssertEqual(evaluation.before.forgetAccuracy ?? 0, 1, accuracy: 0.05)
        XCTAssertLessThan(evaluation.after.forgetAccuracy ?? 1, 0.05)
        XCTAssertGreaterThan(evaluation.after.retainAccuracy ?? 0, (evaluation.before.retainAccuracy ?? 1) - 0.03)
        XCTAssertNotNil(evaluation.membershipAfter)
        XCTAssertEqual(evaluation.after.confusion.count, 3)
        XCTAssertEqual(report.layers.first?.retainRows, 60)
        XCTAssertGreaterThan(report.layers.first?.relativeChange ?? 0, 0.1)

        // The patched B is P B with P from the collected statistics.
        // A run without a search keeps no matrices (StreamedProjection): collect the same ones again.
        let collected = try unlearner.collectStatistics(samples: train)
        let stats = try XCTUnwrap(collected["fc"])
        let retain = try FeatureSpace(gram: stats.retain[0], dimension: d)
        let forget = try FeatureSpace(gram: stats.forget[0], dimension: d)
        let mr = retain.projector(alpha: 100), mf = forget.projector(alpha: 3)
        let mfmr = TestSupport.multiply(mf, mr, m: d, k: d, n: d)
        let id = TestSupport.identity(d)
        let p = (0..<(d * d)).map { id[$0] - (mf[$0] - mfmr[$0]) }
        let b = model().graph.initializer(named: "fc")!.doubleValues()
        let expected = TestSupport.multiply(p, b, m: d, k: d, n: classes)
        let got = try XCTUnwrap(result.patchedWeights["fc"]).doubleValues()
        XCTAssertLessThan(TestSupport.maxAbsDifference(got, expected), 1e-6)
        XCTAssertEqual(result.model.graph.initializer(named: "fc")?.doubleValues(), got)

        // Statistics given back produce the same patch without a statistics pass.
        let again = try unlearner.run(train: train, statistics: collected)
        XCTAssertEqual(again.patchedWeights["fc"]?.doubleValues(), got)
        XCTAssertTrue(again.report.settings.statisticsLoaded)

        let json = try JSONEncoder().encode(report)
        let decoded = try JSONDecoder().decode(UnlearningReport.self, from: json)
        XCTAssertEqual(decoded.chosenAlphaRetain, 100)
        let html = ReportHTML.render(report)
        XCTAssertTrue(html.hasPrefix("<!DOCTYPE html>"))
        XCTAssertTrue(html.contains("<svg"))
        XCTAssertFalse(html.contains("<script"))
    }

    func testSearchPicksTheBestValidationScore() throws {
        var configuration = UnlearningConfiguration(forgetClasses: [2])
        configuration.method = .published
        configuration.samples = 60
        configuration.search = true
        configuration.validationPerClass = 10
        configuration.alphaRetainGrid = [10, 1000]
        configuration.alphaForgetGrid = [1, 100]
        let unlearner = try Unlearner(model: model(), configuration: configuration) { try LinearExecutor(model: $0) }
        let train = samples(perClass: 100, seed: 3)
        let result = try unlearner.run(train: train)
        let report = result.report
        XCTAssertEqual(report.grid.count, 4)
        XCTAssertEqual(report.validationSamples, 30)
        let best = report.grid.max { $0.score < $1.score }!
        XCTAssertEqual(report.chosenAlphaRetain, best.alphaRetain)
        XCTAssertEqual(report.chosenAlphaForget, best.alphaForget)
        XCTAssertGreaterThan(best.score, 0.9)
        XCTAssertTrue(ReportHTML.render(report).contains("α search"))
    }

    /// Two passes are the method run again on the once-patched model, nothing else.
    func testSecondPassRunsTheMethodOnThePatchedModel() throws {
        var configuration = UnlearningConfiguration(forgetClasses: [2])
        configuration.method = .published
        configuration.samples = 60
        configuration.membershipInference = false
        let factory: ModelExecutorFactory = { try LinearExecutor(model: $0) }
        let train = samples(perClass: 50, seed: 4)
        let once = try Unlearner(model: model(), configuration: configuration, executorFactory: factory).run(
            train: train)
        let byHand = try Unlearner(model: once.model, configuration: configuration, executorFactory: factory).run(
            train: train)

        configuration.passes = 2
        let twice = try Unlearner(model: model(), configuration: configuration, executorFactory: factory)
            .run(train: train, test: samples(perClass: 20, seed: 5))
        let got = try XCTUnwrap(twice.patchedWeights["fc"]).doubleValues()
        XCTAssertEqual(got, byHand.patchedWeights["fc"]?.doubleValues())
        XCTAssertNotEqual(got, once.patchedWeights["fc"]?.doubleValues())
        XCTAssertEqual(twice.report.settings.passes, 2)
        XCTAssertTrue(
            twice.report.notes.contains { $0.hasPrefix("pass 2: α_r = 100, α_f = 3") }, "\(twice.report.notes)")
        // Before/after compare the original with the final model.
        XCTAssertEqual(twice.report.test?.before.forgetAccuracy ?? 0, 1, accuracy: 0.05)
        configuration.passes = 0
        XCTAssertThrowsError(try Unlearner(model: model(), configuration: configuration, executorFactory: factory))
    }

    func testAccuracyMetricsByHand() {
        let metrics = ClassificationMetrics(labels: [0, 0, 1, 2, 2], predictions: [0, 1, 1, 2, 0], forgetClasses: [2])
        XCTAssertEqual(metrics.accuracy, 0.6, accuracy: 1e-12)
        XCTAssertEqual(metrics.retainAccuracy ?? 0, 2.0 / 3.0, accuracy: 1e-12)
        XCTAssertEqual(metrics.forgetAccuracy ?? 0, 0.5, accuracy: 1e-12)
        XCTAssertEqual(metrics.perClass, ["0": 0.5, "1": 1, "2": 0.5])
        XCTAssertEqual(metrics.confusion, [[1, 1, 0], [0, 1, 0], [1, 0, 1]])
        XCTAssertEqual(metrics.searchScore, 2.0 / 3.0 * 0.5, accuracy: 1e-12)
        let stray = ClassificationMetrics(labels: [1_000_000_000], predictions: [0], forgetClasses: [])
        XCTAssertEqual(stray.confusion, [])
        XCTAssertEqual(stray.accuracy, 0)
        // Softmax probabilities of the true label, and rows that already are probabilities.
        let logits = LogitTable(rows: 2, classes: 2, values: [0, Float(log(3.0)), 0.25, 0.75])
        let p = logits.trueLabelProbabilities([1, 1])
        XCTAssertEqual(p[0], 0.75, accuracy: 1e-6)
        XCTAssertEqual(p[1], 0.75, accuracy: 1e-6)
        XCTAssertEqual(logits.predictions, [1, 1])
    }

    func testSampleSelectionFollowsTheDesign() throws {
        // Classes 0..3 with 20 samples each, interleaved.
        let labels = (0..<80).map { $0 % 4 }
        let selection = try SampleSelection(labels: labels, forgetClasses: [1], alreadyForgotten: [3], samples: 10)
        XCTAssertEqual(selection.retainClasses, [0, 2])
        XCTAssertEqual(selection.retain, [0, 4, 8, 12, 16, 2, 6, 10, 14, 18])
        XCTAssertEqual(selection.forget, [1, 5, 9, 13, 17, 21, 25, 29, 33, 37])
        let held = try SampleSelection(labels: labels, forgetClasses: [1], samples: 900, validationPerClass: 5)
        // At most a tenth of each class (2 of 20) is held out, from the end.
        XCTAssertEqual(held.validation.count, 8)
        XCTAssertTrue(held.validation.contains(79))
        XCTAssertTrue(Set(held.validation).isDisjoint(with: held.retain + held.forget))
        XCTAssertEqual(held.forget.count, 18)
        // Several forget classes in a class-sorted file: each gets its share, none is left out.
        let sorted = (0..<80).map { $0 / 20 }
        let two = try SampleSelection(labels: sorted, forgetClasses: [1, 2], samples: 10)
        XCTAssertEqual(two.forget, Array(20..<25) + Array(40..<45))
        let short = try SampleSelection(labels: sorted, forgetClasses: [1, 2], samples: 30)
        XCTAssertEqual(short.forget, Array(20..<35) + Array(40..<55))
        XCTAssertThrowsError(try SampleSelection(labels: labels, forgetClasses: [7]))
        XCTAssertThrowsError(try SampleSelection(labels: labels, forgetClasses: [0, 1, 2, 3]))
    }

    /// The default method on a model that is only a head: no layer to erase, so the ladder ends at the
    /// head repair, chosen on the validation split; the class is forgotten and the report says how.
    func testErasureMethodOnAHeadOnlyModel() throws {
        var configuration = UnlearningConfiguration(forgetClasses: [2])
        configuration.samples = 60
        configuration.batchSize = 16
        configuration.membershipMaxPerSide = 60
        let unlearner = try Unlearner(model: model(), configuration: configuration) { try LinearExecutor(model: $0) }
        let train = samples(perClass: 50, seed: 1), test = samples(perClass: 40, seed: 2)
        let result = try unlearner.run(train: train, test: test)
        let report = result.report
        XCTAssertEqual(report.method, "erase")
        let erasure = try XCTUnwrap(report.erasure)
        XCTAssertEqual(erasure.head, "fc")
        XCTAssertEqual(erasure.erasedLayers, [])
        XCTAssertEqual(erasure.depths.map(\.depth), [0])
        XCTAssertEqual(erasure.repairGrid.count, configuration.repairRidges.count * configuration.repairMargins.count)
        XCTAssertEqual(report.validationSamples, 15, "a tenth of each class is held out")
        XCTAssertTrue(
            report.notes.contains { $0.hasPrefix("only 5 forget-class samples could be held out") }, "\(report.notes)")
        let evaluation = try XCTUnwrap(report.test)
        XCTAssertEqual(evaluation.after.forgetAccuracy ?? 1, 0, accuracy: 0.02)
        XCTAssertGreaterThanOrEqual(
            evaluation.after.retainAccuracy ?? 0, (evaluation.before.retainAccuracy ?? 1) - 0.02)
        XCTAssertNotNil(evaluation.probe)
        XCTAssertNotNil(result.patchedWeights["fc"])
        XCTAssertThrowsError(
            try unlearner.run(train: train, statistics: result.statistics),
            "statistics files serve the published method")
    }

    /// Classes forgotten earlier count in neither ACC_r nor ACC_f.
    func testAlreadyForgottenClassesAreOutOfTheAccuracies() {
        let metrics = ClassificationMetrics(
            labels: [0, 0, 1, 2, 2], predictions: [0, 1, 1, 0, 0], forgetClasses: [1], ignoring: [2])
        XCTAssertEqual(metrics.retainAccuracy, 0.5)
        XCTAssertEqual(metrics.forgetAccuracy, 1)
        XCTAssertEqual(metrics.accuracy, 0.4)
    }
}
