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
        try executor.forEachBatch(of: samples, batchSize: batchSize, taps: [tap(into: sink)]) { _, _ in }
        return sink.features(dimension: dimension)
    }

    /// A tap that appends the layer's input vectors to `sink`, for a pass that also wants the logits.
    func tap(into sink: Sink) -> InputTap {
        let d = dimension
        let name = use.node
        return InputTap(node: use.isNamed ? use.node : "", nodeIndex: use.nodeIndex, input: use.input) { tensor in
            guard tensor.shape.last == d else {
                throw UsageError("node \(name) input \(tensor.shape) does not end in \(d)")
            }
            sink.append(tensor.floatValues())
        }
    }

    /// Where a tap's vectors gather, in batch order.
    final class Sink: @unchecked Sendable {
        private let lock = NSLock()
        private var values: [Float] = []
        func append(_ more: [Float]) { lock.lock(); values += more; lock.unlock() }

        /// The vectors so far, row-major, and their number.
        func features(dimension: Int) -> (values: [Double], rows: Int) {
            lock.lock(); defer { lock.unlock() }
            return (values.map(Double.init), values.count / max(dimension, 1))
        }
    }
}
