import Foundation
import LetheCore

/// The vectors entering one dense layer (its input's last axis), sample by sample: the penultimate
/// features when the layer is the classifier's head. Taps fire in batch order, so rows follow the
/// samples' order.
struct FeatureCollector {
    let use: LayerUse
    let dimension: Int
    let batchSize: Int

    init(layer: WeightLayer, batchSize: Int) throws {
        guard let use = layer.uses.first, layer.uses.count == 1, case .lastAxis = use.rows else {
            throw UsageError("layer \(layer.name) is not a single dense layer reading its input's last axis")
        }
        self.use = use
        self.dimension = layer.inputDimension
        self.batchSize = batchSize
    }

    /// Row-major `rows × dimension` features and the number of rows (one per sample, or one per
    /// token when the layer sees sequences).
    func features(of samples: SampleSet, executor: any ModelExecutor) throws -> (values: [Double], rows: Int) {
        let sink = Sink()
        let d = dimension
        let name = use.node
        let tap = InputTap(node: use.isNamed ? use.node : "", nodeIndex: use.nodeIndex, input: use.input) { tensor in
            guard tensor.shape.last == d else {
                throw UsageError("node \(name) input \(tensor.shape) does not end in \(d)")
            }
            sink.append(tensor.floatValues())
        }
        try executor.forEachBatch(of: samples, batchSize: batchSize, taps: [tap]) { _, _ in }
        let values = sink.values.map(Double.init)
        return (values, values.count / max(d, 1))
    }

    private final class Sink: @unchecked Sendable {
        private let lock = NSLock()
        private(set) var values: [Float] = []
        func append(_ more: [Float]) { lock.lock(); values += more; lock.unlock() }
    }
}
