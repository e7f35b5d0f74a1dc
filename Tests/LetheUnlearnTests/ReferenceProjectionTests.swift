import Foundation
import LetheCore
import LetheIR
import LetheNumPy
import LetheONNX
import XCTest
@testable import LetheUnlearn

/// Spaces and projection from the reference's own float64 statistics (formats/models/unlearn/*.stats.npz)
/// against its patched weights: isolates eigen-decomposition, λ and the factored projection from the
/// statistics pass.
final class ReferenceProjectionTests: XCTestCase {
    private func path(_ relative: String) -> String { TestSupport.packageRoot.appendingPathComponent(relative).path }

    private func arrays(_ relative: String) throws -> [String: Tensor] {
        Dictionary(
            try NPZFormat.readArrays(path: path(relative)).map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a }
        )
    }

    /// Statistics keyed like the model's layers from the reference's `<module>.retain` arrays, for the
    /// layers whose statistics the fixture holds (`weightName` maps a module name to the stored weight).
    private func referenceStatistics(
        _ stats: [String: Tensor], layers: [WeightLayer], weightName: (String) -> String
    ) throws -> (StatisticsSet, [WeightLayer]) {
        var set = StatisticsSet()
        var kept: [WeightLayer] = []
        for key in stats.keys.sorted() where key.hasSuffix(".retain") {
            let module = String(key.dropLast(".retain".count))
            guard let layer = layers.first(where: { $0.name == weightName(module) }) else { continue }
            var statistics = LayerStatistics(layer: layer.name, groups: 1, dimension: layer.inputDimension)
            statistics.retain = [try XCTUnwrap(stats[key]).doubleValues()]
            statistics.forget = [try XCTUnwrap(stats["\(module).forget"]).doubleValues()]
            try set.merge(statistics)
            kept.append(layer)
        }
        return (set, kept)
    }

    private func assertClose(
        _ got: Tensor, _ expected: Tensor, _ name: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertEqual(got.shape, expected.shape, name, file: file, line: line)
        let a = got.doubleValues(), b = expected.doubleValues()
        guard a.count == b.count else { return }
        let scale = b.reduce(0) { max($0, abs($1)) }
        let error = TestSupport.maxAbsDifference(a, b)
        XCTAssertLessThanOrEqual(
            error, 1e-6 * scale, "\(name): max |Δ| \(error), max |w| \(scale)", file: file, line: line)
    }

    func testSampleCNNProjectionFromReferenceStatistics() throws {
        let model = try ONNXFormat.read(path: path("samples/fashion_cnn.onnx")).model
        let layers = LayerDiscovery.discover(in: model).layers
        for fixture in ["fashion_cnn", "fashion_cnn_default"] {
            let (stats, kept) = try referenceStatistics(
                try arrays("formats/models/unlearn/\(fixture).stats.npz"), layers: layers
            ) { "\($0).weight" }
            XCTAssertEqual(kept.map(\.name), ["conv1.weight", "conv2.weight", "fc2.weight"])
            let plan = try ProjectionPlan(model: model, layers: kept, statistics: stats)
            let expected = try arrays("formats/models/unlearn/\(fixture).patched.npz")
            for (name, tensor) in try plan.patchedWeights(alphaRetain: 100, alphaForget: 3) {
                assertClose(tensor, try XCTUnwrap(expected[name]), "\(fixture) \(name)")
            }
        }
    }

    /// Both ViT exports: O × d weights behind a Transpose (TorchScript) and d × O weights (dynamo).
    func testViTProjectionFromReferenceStatistics() throws {
        let stats = try arrays("formats/models/unlearn/vit.stats.npz")
        let map =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: path("formats/models/unlearn/vit_dynamo_weight_map.json"))))
            as? [String: Any]
        for (file, fixture) in [("vit_ts", "vit.patched.npz"), ("vit_dynamo", "vit.vit_dynamo.patched.npz")] {
            let model = try ONNXFormat.read(path: path("formats/models/\(file).onnx")).model
            let layers = LayerDiscovery.discover(in: model).layers
            let (set, kept) = try referenceStatistics(stats, layers: layers) { module in
                guard file == "vit_dynamo", let entry = map?["\(module).weight"] as? [String: Any],
                    let name = entry["onnx_initializer"] as? String
                else { return "\(module).weight" }
                return name
            }
            XCTAssertEqual(kept.count, 14, file)
            let plan = try ProjectionPlan(model: model, layers: kept, statistics: set)
            let expected = try arrays("formats/models/unlearn/\(fixture)")
            for (name, tensor) in try plan.patchedWeights(alphaRetain: 100, alphaForget: 3) {
                assertClose(tensor, try XCTUnwrap(expected[name], "\(file) \(name)"), "\(file) \(name)")
            }
        }
    }
}
