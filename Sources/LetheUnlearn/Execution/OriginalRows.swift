import LetheCore
import LetheIR

/// The original model's activations, kept beside the erased model's for compensation
/// (`GuardedRefit`): each compensated layer reads the retain samples' original rows from here.
///
/// Given every sample the method reads (`sharing`), the same cache afterwards runs on to the model's
/// output and gives the original logits and head features (`ErasureMethod.OriginalPass`), so the
/// original model runs once instead of twice. When those samples outgrow the cache budget, it keeps
/// the retain samples alone and the original outputs come from a pass of their own.
final class OriginalRows {
    private(set) var cache: ActivationCache
    /// Samples cached, in cache order, and each one's slot.
    private var indices: [Int]
    private var slot: [Int: Int] = [:]
    private var sharing: Bool
    private let method: ErasureMethod
    private let train: SampleSet
    private let retain: [Int]

    init(method: ErasureMethod, train: SampleSet, selection: SampleSelection, sharing shared: [Int]?) throws {
        self.method = method
        self.train = train
        retain = selection.retain
        if let shared, let cache = try? Self.cache(of: shared, method: method, train: train) {
            (self.cache, indices, sharing) = (cache, shared, true)
        } else {
            (cache, indices, sharing) = (
                try Self.cache(of: selection.retain, method: method, train: train), selection.retain, false
            )
        }
        for (position, index) in indices.enumerated() { slot[index] = position }
    }

    private static func cache(of indices: [Int], method: ErasureMethod, train: SampleSet) throws -> ActivationCache {
        try ActivationCache(
            model: method.model, samples: train.subset(indices), batchSize: method.configuration.batchSize,
            budget: method.configuration.activationCacheBytes, makeExecutor: method.makeExecutor)
    }

    /// Moves the cache to the node at `nodeIndex` and returns the retain samples' slots, in the
    /// selection's retain order.
    func retainSlots(at nodeIndex: Int) throws -> [Int] {
        do {
            try cache.advance(to: nodeIndex, model: method.model)
        } catch is ActivationCache.Unavailable where sharing {
            // The shared samples' live values outgrew the budget: start again with the retain ones.
            cache = try Self.cache(of: retain, method: method, train: train)
            (indices, sharing) = (retain, false)
            slot = [:]
            for (position, index) in indices.enumerated() { slot[index] = position }
            try cache.advance(to: nodeIndex, model: method.model)
        }
        return retain.map { slot[$0]! }
    }

    /// The original logits of every cached sample and head features of `fit`, from running the
    /// cache on to the output; nil when it holds the retain samples alone or cannot get there.
    func runToEnd(fit: [Int]) throws -> ErasureMethod.OriginalPass? {
        guard sharing, let use = method.head.uses.first, fit.allSatisfy({ slot[$0] != nil }) else { return nil }
        let model = method.model, d = method.head.inputDimension
        do {
            try cache.advance(to: use.nodeIndex, model: model)
            var features: [Double] = []
            features.reserveCapacity(fit.count * d)
            try cache.rows(of: model.graph.nodes[use.nodeIndex].inputs[use.input], at: fit.map { slot[$0]! }) { chunk in
                guard chunk.rank == 2, chunk.shape[1] == d else {
                    throw ActivationCache.Unavailable(
                        description: "the head reads \(chunk.shape), not one vector per sample")
                }
                features += chunk.floatValues().map(Double.init)
            }
            guard let output = model.graph.outputs.first?.name else { return nil }
            var values: [Float] = []
            var classes = 0
            for batch in try cache.finish(model: model, output: output) {
                let rows = batch.rank >= 1 ? batch.shape[0] : 0
                guard rows > 0, batch.elementCount % rows == 0, classes == 0 || batch.elementCount / rows == classes
                else { return nil }
                classes = batch.elementCount / rows
                values += batch.floatValues()
            }
            guard values.count == indices.count * classes else { return nil }
            return ErasureMethod.OriginalPass(
                logits: LogitTable(rows: indices.count, classes: classes, values: values), of: indices,
                features: features, of: fit, dimension: d)
        } catch is ActivationCache.Unavailable {
            return nil
        }
    }
}
