import Foundation
import LetheCore
import LetheIR
import LetheONNX
import LetheTestSupport
import XCTest
@testable import LetheUnlearn

/// The head's input erased at a transformer's class-token readout: where it is found, and that the
/// writer's refit leaves the forget samples' normalised token rows with the rest's mean.
final class ResidualReadoutTests: XCTestCase {
    private let tokens = 3, d = 4, width = 6, classes = 3

    /// x → embed (MatMul) = r → Relu = h → writer (MatMul + bias) → Add(r, ·) → LayerNorm → Gather(token 1) → Gemm head.
    private func graph(gatherAxis: Int = 1, normIsOutput: Bool = false) -> Graph {
        func values(_ count: Int, _ seed: UInt64) -> [Float] {
            TestSupport.randomValues(count, seed: seed).map { Float($0) }
        }
        let nodes = [
            Node(name: "embed", opType: "MatMul", inputs: ["x", "we"], outputs: ["r"]),
            Node(name: "relu", opType: "Relu", inputs: ["r"], outputs: ["h"]),
            Node(
                name: "t", opType: "Transpose", inputs: ["ww"], outputs: ["wwT"], attributes: [("perm", .ints([1, 0]))]),
            Node(name: "writer", opType: "MatMul", inputs: ["h", "wwT"], outputs: ["p"]),
            Node(name: "bias", opType: "Add", inputs: ["bw", "p"], outputs: ["written"]),
            Node(name: "sum", opType: "Add", inputs: ["r", "written"], outputs: ["stream"]),
            Node(name: "norm", opType: "LayerNormalization", inputs: ["stream", "gamma", "beta"], outputs: ["normed"]),
            Node(
                name: "index", opType: "Constant", inputs: [], outputs: ["i"],
                attributes: [("value", .tensor(Tensor(scalar: Int64(1))))]),
            Node(
                name: "pick", opType: "Gather", inputs: ["normed", "i"], outputs: ["feature"],
                attributes: [("axis", .int(gatherAxis))]),
            Node(
                name: "head", opType: "Gemm", inputs: ["feature", "wh", "bh"], outputs: ["logits"],
                attributes: [("transB", .int(1))])
        ]
        let initializers = [
            Initializer(name: "we", tensor: Tensor(shape: [d, width], values: values(d * width, 1))),
            Initializer(name: "ww", tensor: Tensor(shape: [width, width], values: values(width * width, 2))),
            Initializer(name: "bw", tensor: Tensor(shape: [width], values: values(width, 3))),
            Initializer(name: "gamma", tensor: Tensor(shape: [width], values: values(width, 4).map { $0 + 1.5 })),
            Initializer(name: "beta", tensor: Tensor(shape: [width], values: values(width, 5))),
            Initializer(name: "wh", tensor: Tensor(shape: [classes, width], values: values(classes * width, 6))),
            Initializer(name: "bh", tensor: Tensor(shape: [classes], values: values(classes, 7)))
        ]
        let outputs =
            [ValueInfo(name: "logits", dtype: .float32)]
            + (normIsOutput ? [ValueInfo(name: "normed", dtype: .float32)] : [])
        return Graph(
            nodes: nodes,
            inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.symbolic("N"), .fixed(tokens), .fixed(d)])],
            outputs: outputs, initializers: initializers)
    }

    private func readout(_ graph: Graph) -> ResidualReadout? {
        let layers = LayerDiscovery.discover(in: Model(graph: graph, irVersion: 8, opsets: [("", 17)])).layers
        guard let head = LayerDiscovery.classifierHead(of: layers) else { return nil }
        return ResidualReadout.find(head: head, layers: layers.filter { $0.name != head.name }, graph: graph)
    }

    func testFindsTheClassTokenReadout() throws {
        let found = try XCTUnwrap(readout(graph()))
        XCTAssertEqual(found.writer.name, "ww")
        XCTAssertEqual(found.writerInput, "h")
        XCTAssertEqual(found.residual, "r")
        XCTAssertEqual(found.token, 1)
        XCTAssertEqual(found.scale.count, width)
        // Anything else along the path, or another reader of it, and there is no readout to erase.
        XCTAssertNil(readout(graph(gatherAxis: 0)))
        XCTAssertNil(readout(graph(normIsOutput: true)))
    }

    /// The erasure gives the same model whether it keeps activations or runs the whole model per layer.
    func testTheReadoutIsErasedAlikeOnTheCacheAndOnWholeModelPasses() throws {
        let model = Model(graph: graph(), irVersion: 8, opsets: [("", 17)])
        let perClass = 60
        let noise = TestSupport.randomValues(perClass * classes * tokens * d, seed: 41)
        var values: [Float] = [], labels: [Int] = []
        for k in 0..<classes {
            for s in 0..<perClass {
                let base = (k * perClass + s) * tokens * d
                values += (0..<(tokens * d)).map { Float(noise[base + $0] * 0.5 + ($0 % classes == k ? 1.0 : 0)) }
                labels.append(k)
            }
        }
        let train = SampleSet(inputs: Tensor(shape: [labels.count, tokens, d], values: values), labels: labels)
        var configuration = UnlearningConfiguration(forgetClasses: [1])
        configuration.samples = 60
        configuration.validationPerClass = 10
        configuration.membershipInference = false
        configuration.probe = false
        configuration.erasureDistortionCap = 1
        let factory = RuntimeExecutor.factory(threads: 1)
        let onCache = try Unlearner(model: model, configuration: configuration, executorFactory: factory).run(
            train: train)
        configuration.activationCacheBytes = 0
        let whole = try Unlearner(model: model, configuration: configuration, executorFactory: factory).run(
            train: train)
        XCTAssertEqual(onCache.report.erasure?.readoutWriter, "ww")
        XCTAssertEqual(whole.report.erasure?.readoutWriter, "ww")
        XCTAssertTrue(whole.report.notes.contains { $0.contains("whole model") }, "\(whole.report.notes)")
        XCTAssertEqual(Set(onCache.patchedWeights.keys), Set(whole.patchedWeights.keys))
        XCTAssertTrue(onCache.patchedWeights.keys.contains("ww"))
        for (name, tensor) in onCache.patchedWeights {
            let a = tensor.doubleValues(), b = try XCTUnwrap(whole.patchedWeights[name]).doubleValues()
            let scale = b.map(abs).max() ?? 1
            for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: 1e-4 * scale, name) }
        }
    }

    func testTheSampleViTReadsItsClassToken() throws {
        let model = try ONNXFormat.read(
            path: TestSupport.packageRoot.appendingPathComponent("samples/fashion_vit.onnx").path
        ).model
        let found = try XCTUnwrap(readout(model.graph))
        XCTAssertEqual(found.writer.name, "blocks.3.mlp.fc2.weight")
        XCTAssertEqual(found.token, 0)
        XCTAssertEqual(found.residual, "/blocks.3/Add_output_0")
        XCTAssertNil(
            readout(
                try ONNXFormat.read(
                    path: TestSupport.packageRoot.appendingPathComponent("samples/fashion_cnn.onnx").path
                ).model.graph))
    }

    /// LEACE makes the two class-conditional means equal on the rows it was fitted on.
    func testConceptEraserEqualisesTheMeans() throws {
        let n = 50, dimension = 5
        let noise = TestSupport.randomValues(n * dimension, seed: 21)
        let concept = (0..<n).map { $0 % 5 == 0 }
        let rows = (0..<(n * dimension)).map {
            noise[$0] + (concept[$0 / dimension] ? Double($0 % dimension) * 0.7 : 0)
        }
        let eraser = try XCTUnwrap(try ConceptEraser(rows: rows, count: n, dimension: dimension, concept: concept))
        let erased = (0..<n).map { eraser.apply(Array(rows[($0 * dimension)..<(($0 + 1) * dimension)])) }
        for i in 0..<dimension {
            let inside = erased.indices.filter { concept[$0] }.map { erased[$0][i] }
            let outside = erased.indices.filter { !concept[$0] }.map { erased[$0][i] }
            XCTAssertEqual(
                inside.reduce(0, +) / Double(inside.count), outside.reduce(0, +) / Double(outside.count), accuracy: 1e-9
            )
        }
        XCTAssertNil(
            try ConceptEraser(rows: rows, count: n, dimension: dimension, concept: Array(repeating: false, count: n)))
    }

    /// After the writer's refit, the normalised stream of the forget rows has moved most of the way
    /// onto the rest's mean: the erasure meets the means before the norm, whose re-scaling of each
    /// row leaves a remainder (about a fifth here, with a 48-wide stream and forget rows far off).
    func testTheWritersRefitErasesTheHeadsInput() throws {
        let found = try XCTUnwrap(readout(graph()))
        // More input dimensions than rows, so the refit can reach its targets.
        let n = 40, wide = 64, width = 48
        let writer = WeightLayer(
            name: found.writer.name, source: found.writer.source, shape: [width, wide], dtype: .float32,
            orientation: found.writer.orientation, groups: 1, inputDimension: wide, outputDimension: width,
            uses: found.writer.uses)
        let scale = TestSupport.randomValues(width, seed: 35).map { $0 * 0.5 + 1 },
            shift = TestSupport.randomValues(width, seed: 36)
        let readout = ResidualReadout(
            writer: writer, writerInput: found.writerInput, residual: found.residual, stream: found.stream,
            token: found.token,
            scale: scale, shift: shift, epsilon: 1e-5)
        let isForget = (0..<n).map { $0 < 10 }
        let h = TestSupport.randomValues(n * wide, seed: 31).enumerated().map {
            isForget[$0.offset / wide] ? $0.element + 0.8 : $0.element
        }
        let residual = TestSupport.randomValues(n * width, seed: 32).enumerated().map {
            isForget[$0.offset / width] && $0.offset % 2 == 0 ? $0.element + 1 : $0.element
        }
        let weight = TestSupport.randomValues(width * wide, seed: 33, scale: 0.2),
            bias = TestSupport.randomValues(width, seed: 34)
        func meanGap(_ w: [Double], _ b: [Double]?) -> Double {
            var stream = HeadRepair.logits(features: h, rows: n, dimension: wide, weight: w, bias: b, classes: width)
            for i in stream.indices { stream[i] += residual[i] }
            var gap = [Double](repeating: 0, count: width)
            for r in 0..<n {
                let row = Array(stream[(r * width)..<((r + 1) * width)])
                let mean = row.reduce(0, +) / Double(width)
                let spread = (row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(width) + 1e-5).squareRoot()
                for i in 0..<width {
                    let normed = (row[i] - mean) / spread * scale[i] + shift[i]
                    gap[i] += isForget[r] ? normed / 10 : -normed / 30
                }
            }
            return gap.reduce(0) { $0 + $1 * $1 }.squareRoot()
        }
        let refit = try readout.erase(
            h: h, residual: residual, rows: n, isForget: isForget, weight: weight, bias: bias, ridge: 1e-6)
        let before = meanGap(weight, bias), after = meanGap(refit.weight, refit.bias)
        XCTAssertGreaterThan(before, 1)
        XCTAssertLessThan(after, before * 0.25, "gap \(before) → \(after)")
    }
}
