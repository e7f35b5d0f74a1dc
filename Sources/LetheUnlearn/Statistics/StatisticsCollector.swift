import LetheCore

/// Runs the original model once over the retain samples and once over the forget samples, tapping
/// every weight layer's input, and accumulates each layer's Gram matrices.
public struct StatisticsCollector: Sendable {
    public var layers: [WeightLayer]
    /// Output positions per image above which positions are sampled; nil uses every position.
    public var positionCap: Int?
    /// Rows per layer a pass aims for (see `UnlearningConfiguration.rowBudget`); nil: no budget.
    public var rowBudget: Int?
    public var seed: UInt64
    public var batchSize: Int

    public init(
        layers: [WeightLayer], positionCap: Int? = 1024, rowBudget: Int? = nil, seed: UInt64 = 0, batchSize: Int = 64
    ) {
        self.layers = layers
        self.positionCap = positionCap
        self.rowBudget = rowBudget
        self.seed = seed
        self.batchSize = batchSize
    }

    public func collect(
        executor: any ModelExecutor, retain: SampleSet, forget: SampleSet,
        progress: UnlearningProgress? = nil
    ) throws -> StatisticsSet {
        let retainGrams = try pass(
            executor: executor, samples: retain, tag: 1, phase: "statistics (retain)", progress: progress)
        let forgetGrams = try pass(
            executor: executor, samples: forget, tag: 2, phase: "statistics (forget)", progress: progress)
        var set = StatisticsSet()
        for (index, layer) in layers.enumerated() {
            try set.merge(Self.statistics(of: layer, retain: retainGrams[index], forget: forgetGrams[index]))
        }
        return set
    }

    /// Input values per statistics batch: 16 images at 224² × 3. A pass holds a batch's activations
    /// (and every tapped input) at once, about 1 GB for ResNet-18 at 64 such images, while a batch of
    /// 16 keeps the runtime as busy; small inputs (28 × 28) still run 64 at a time.
    static let batchValues = 16 * 3 * 224 * 224

    /// The batch a pass over samples of `shape` uses: `limit`, or fewer for large samples.
    static func batchSize(for shape: [Int], limit: Int) -> Int {
        max(1, min(limit, batchValues / max(1, shape.reduce(1, *))))
    }

    /// The positions per image a pass over `images` samples uses: `positionCap`, or fewer to keep
    /// near the row budget.
    func positionCap(images: Int) -> Int? {
        guard let rowBudget else { return positionCap }
        let share = max(1, (rowBudget + max(images, 1) - 1) / max(images, 1))
        return min(positionCap ?? share, share)
    }

    /// What one pass leaves for one layer.
    typealias PassResult = (grams: [[Double]], sums: [[Double]], rowData: [[Float]?], rows: Int)

    /// One layer's statistics from its retain and forget passes.
    static func statistics(of layer: WeightLayer, retain: PassResult, forget: PassResult) -> LayerStatistics {
        var statistics = LayerStatistics(layer: layer.name, groups: layer.groups, dimension: layer.inputDimension)
        statistics.retain = retain.grams
        statistics.retainSum = retain.sums
        statistics.forgetSum = forget.sums
        statistics.retainRowData = retain.rowData
        statistics.retainRows = retain.rows
        statistics.forget = forget.grams
        statistics.forgetRowData = forget.rowData
        statistics.forgetRows = forget.rows
        return statistics
    }

    /// What `sink` accumulated.
    static func result(of sink: LayerRowSink, gramsOfKeptRows: Bool = true) -> PassResult {
        let finished = sink.grams(gramsOfKeptRows: gramsOfKeptRows)
        return (finished.grams, finished.sums, finished.rows, sink.rowCount)
    }

    /// One pass over `samples`, each layer's result handed to `finish` as soon as its sink is done and
    /// the sink released right after, so that a caller reducing the results keeps only one layer's
    /// full matrices at a time. Without `gramsOfKeptRows`, a layer that kept its rows (fewer than `d`)
    /// comes with empty matrices. `finish` may take the matrices out of the result.
    func pass<Reduced>(
        executor: any ModelExecutor, samples: SampleSet, tag: UInt64, phase: String,
        progress: UnlearningProgress?, gramsOfKeptRows: Bool = true,
        finish: (Int, inout PassResult) throws -> Reduced
    ) throws -> [Reduced] {
        let cap = positionCap(images: samples.count)
        var sinks: [LayerRowSink?] = layers.enumerated().map {
            LayerRowSink(layer: $1, layerIndex: $0, positionCap: cap, seed: seed)
        }
        var taps: [InputTap] = []
        for case let sink? in sinks {
            sink.passTag = tag
            sink.expectedImages = samples.count
            for (useIndex, use) in sink.layer.uses.enumerated() {
                // Batches run side by side still reach each sink in order, so its sums and position
                // draws are those of one batch after another.
                let key = taps.count
                taps.append(
                    InputTap(node: use.isNamed ? use.node : "", nodeIndex: use.nodeIndex, input: use.input) { tensor in
                        try BatchContext.inTurn(key: key) { try sink.consume(tensor, use: use, useIndex: useIndex) }
                    })
            }
        }
        let batch = Self.batchSize(for: samples.sampleShape, limit: batchSize)
        try executor.forEachBatch(of: samples, batchSize: batch, taps: taps, tapsTakeTurns: true) { range, _ in
            progress?(phase, range.upperBound, samples.count)
        }
        taps = []
        var reduced: [Reduced] = []
        for index in sinks.indices {
            var result = Self.result(of: sinks[index]!, gramsOfKeptRows: gramsOfKeptRows)
            reduced.append(try finish(index, &result))
            sinks[index] = nil
        }
        return reduced
    }

    private func pass(
        executor: any ModelExecutor, samples: SampleSet, tag: UInt64, phase: String,
        progress: UnlearningProgress?
    ) throws -> [PassResult] {
        try pass(executor: executor, samples: samples, tag: tag, phase: phase, progress: progress) { _, result in result
        }
    }
}
