import LetheCore

/// Runs the original model once over the retain samples and once over the forget samples, tapping
/// every weight layer's input, and accumulates each layer's Gram matrices.
public struct StatisticsCollector: Sendable {
    public var layers: [WeightLayer]
    /// Output positions per image above which positions are sampled; nil uses every position.
    public var positionCap: Int?
    public var seed: UInt64
    public var batchSize: Int

    public init(layers: [WeightLayer], positionCap: Int? = 1024, seed: UInt64 = 0, batchSize: Int = 64) {
        self.layers = layers
        self.positionCap = positionCap
        self.seed = seed
        self.batchSize = batchSize
    }

    public func collect(executor: any ModelExecutor, retain: SampleSet, forget: SampleSet,
                        progress: UnlearningProgress? = nil) throws -> StatisticsSet {
        let retainGrams = try pass(executor: executor, samples: retain, tag: 1, phase: "statistics (retain)", progress: progress)
        let forgetGrams = try pass(executor: executor, samples: forget, tag: 2, phase: "statistics (forget)", progress: progress)
        var set = StatisticsSet()
        for (index, layer) in layers.enumerated() {
            var statistics = LayerStatistics(layer: layer.name, groups: layer.groups, dimension: layer.inputDimension)
            statistics.retain = retainGrams[index].grams
            statistics.retainSum = retainGrams[index].sums
            statistics.forgetSum = forgetGrams[index].sums
            statistics.retainRowData = retainGrams[index].rowData
            statistics.retainRows = retainGrams[index].rows
            statistics.forget = forgetGrams[index].grams
            statistics.forgetRowData = forgetGrams[index].rowData
            statistics.forgetRows = forgetGrams[index].rows
            try set.merge(statistics)
        }
        return set
    }

    private func pass(executor: any ModelExecutor, samples: SampleSet, tag: UInt64, phase: String,
                      progress: UnlearningProgress?) throws -> [(grams: [[Double]], sums: [[Double]], rowData: [[Float]?], rows: Int)] {
        let sinks = layers.enumerated().map { LayerRowSink(layer: $1, layerIndex: $0, positionCap: positionCap, seed: seed) }
        var taps: [InputTap] = []
        for sink in sinks {
            sink.passTag = tag
            for (useIndex, use) in sink.layer.uses.enumerated() {
                taps.append(InputTap(node: use.isNamed ? use.node : "", nodeIndex: use.nodeIndex, input: use.input) { tensor in
                    try sink.consume(tensor, use: use, useIndex: useIndex)
                })
            }
        }
        try executor.forEachBatch(of: samples, batchSize: batchSize, taps: taps) { range, _ in
            progress?(phase, range.upperBound, samples.count)
        }
        return sinks.map { sink in
            let finished = sink.grams()
            return (finished.grams, finished.sums, finished.rows, sink.rowCount)
        }
    }
}
