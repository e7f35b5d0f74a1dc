import Foundation
import LetheCore
import LetheIR

/// Lethe's default method (DESIGN §4b): erase the forget classes from the inputs of the weight layers
/// before the head, one layer at a time on the already-erased model (`GuardedRefit`), then repair the
/// head in closed form (`HeadRepair`), with the repair's ridge and margin chosen on the validation
/// split by the stated rule (first validation ACC_f ≤ target, then the highest validation ACC_r).
struct ErasureMethod {
    let model: Model
    /// The classifier's final dense layer.
    let head: WeightLayer
    /// The layers before the head that may be erased, in graph order; a depth `k` erases the last `k`.
    let candidates: [WeightLayer]
    let configuration: UnlearningConfiguration
    let makeExecutor: ModelExecutorFactory
    /// The head's residual readout, when the model has one and the configuration erases it.
    let readout: ResidualReadout?

    struct Outcome {
        var weights: [String: Tensor]
        var model: Model
        var grid: [UnlearningReport.RepairPoint]
        var chosen: UnlearningReport.RepairPoint
        var statistics: StatisticsSet
        var erased: [WeightLayer]
        /// Layers whose erasure would have moved more than the cap of their retain outputs.
        var skipped: [UnlearningReport.SkippedErasure]
        /// Every depth tried, in order, with its validation accuracies.
        var depths: [UnlearningReport.DepthPoint] = []
        var originalValidationRetainAccuracy: Double?
        /// The writer refit to erase the head's input (`ResidualReadout`), if any.
        var readout: String?
        /// Why the erasure ran whole-model passes per layer instead of keeping activations; nil when it kept them.
        var wholeModelReason: String?
        var erasureSeconds: Double
        var repairSeconds: Double
    }

    /// The head is the last dense layer found; the erased layers are the `depth` layers before it
    /// among `layers` (all of them when `depth` is nil).
    init(
        model: Model, layers: [WeightLayer], allLayers: [WeightLayer], configuration: UnlearningConfiguration,
        makeExecutor: @escaping ModelExecutorFactory
    ) throws {
        guard let head = LayerDiscovery.classifierHead(of: allLayers) else {
            throw UsageError(
                "the erasure method needs the model to end in a Gemm or MatMul classifier layer; use \(Setting.method) published"
            )
        }
        let node = model.graph.nodes[head.uses[0].nodeIndex]
        if node.opType == "Gemm" {
            guard (node.attribute("alpha")?.floatValue ?? 1) == 1, (node.attribute("beta")?.floatValue ?? 1) == 1 else {
                throw UsageError(
                    "the classifier layer \(head.name) scales its product (Gemm alpha/beta ≠ 1); use \(Setting.method) published"
                )
            }
        }
        self.model = model
        self.head = head
        candidates = layers.filter { $0.name != head.name }
        self.configuration = configuration
        self.makeExecutor = makeExecutor
        readout =
            configuration.readoutErasure
            ? ResidualReadout.find(head: head, layers: candidates, graph: model.graph) : nil
    }

    /// The depths tried when none is given: every erasable layer, then the last half, then half again,
    /// down to 1, then 0 (the head repair alone).
    func depthLadder() -> [Int] {
        if let depth = configuration.erasureDepth { return [min(depth, candidates.count)] }
        var ladder = [candidates.count]
        var depth = candidates.count / 2
        while depth > 0 { if depth != ladder.last { ladder.append(depth) }; depth /= 2 }
        return ladder.last == 0 ? ladder : ladder + [0]
    }

    /// Runs the depths of `depthLadder()` from the deepest and keeps the first whose validation ACC_f
    /// is within the target and whose validation ACC_r is within `retainBudget` of the original
    /// model's; when none qualifies, the selection rule picks among them.
    func run(train: SampleSet, selection: SampleSelection, progress: UnlearningProgress?) throws -> Outcome {
        let ladder = depthLadder()
        let validation = train.subset(selection.validation)
        let forgetClasses = Set(configuration.forgetClasses), excluded = Set(configuration.alreadyForgotten)
        let neighbours =
            configuration.erasureTarget == .neighbours
            ? neighbourSamples(
                train: train, selection: selection,
                forgetLogits: try makeExecutor(model).logits(
                    of: train.subset(selection.forget), batchSize: configuration.batchSize))
            : nil
        // The original model's logits and head features: from the first depth's compensation cache
        // when it can run on to the end, else from a pass of their own.
        var pass: OriginalPass?
        var originalRetain = 0.0
        func qualifies(_ point: UnlearningReport.DepthPoint) -> Bool {
            (point.forgetAccuracy ?? 0) <= configuration.forgetTarget
                && (point.retainAccuracy ?? 0) >= originalRetain - configuration.retainBudget
        }
        var outcomes: [Outcome] = []
        var points: [UnlearningReport.DepthPoint] = []
        for depth in ladder {
            // A shallower depth that only drops layers the deeper run skipped would repeat it.
            if let last = outcomes.last,
                Set(candidates.suffix(depth).map(\.name)).subtracting(last.skipped.map(\.layer))
                    == Set(last.erased.map(\.name))
            {
                continue
            }
            let outcome = try run(
                depth: depth, neighbours: neighbours, original: &pass, train: train, selection: selection,
                progress: progress)
            if points.isEmpty, let pass {
                originalRetain =
                    ClassificationMetrics(
                        labels: validation.labels, predictions: pass.logits(of: selection.validation).predictions,
                        forgetClasses: forgetClasses, ignoring: excluded
                    ).retainAccuracy ?? 0
            }
            let point = UnlearningReport.DepthPoint(
                depth: depth, layers: outcome.erased.map(\.name), skipped: outcome.skipped,
                retainAccuracy: outcome.chosen.retainAccuracy, forgetAccuracy: outcome.chosen.forgetAccuracy)
            outcomes.append(outcome)
            points.append(point)
            if qualifies(point) { break }
        }
        let best =
            points.firstIndex(where: qualifies)
            ?? SelectionRule(forgetTarget: configuration.forgetTarget).choose(
                points.map { ($0.retainAccuracy, $0.forgetAccuracy) })
        var chosen = outcomes[best]
        chosen.depths = points
        chosen.originalValidationRetainAccuracy = originalRetain
        chosen.erasureSeconds = outcomes.reduce(0) { $0 + $1.erasureSeconds }
        chosen.repairSeconds = outcomes.reduce(0) { $0 + $1.repairSeconds }
        return chosen
    }

    /// Erases the last `depth` candidate layers, one at a time, then repairs the head. Runs on an
    /// `ActivationCache` (one forward pass in all) when the model and the budget allow, else on
    /// whole-model passes per layer; both compute the same method.
    /// `original`: the original model's outputs, computed on the way when nil.
    func run(
        depth: Int, neighbours: [Int]?, original pass: inout OriginalPass?, train: SampleSet,
        selection: SampleSelection,
        progress: UnlearningProgress?
    ) throws -> Outcome {
        let erased = Array(candidates.suffix(depth))
        let started = Date()
        var state = ErasureState(model: model)
        var features: HeadFeatures
        var wholeModelReason: String?
        do {
            features = try eraseOnCache(
                erased, neighbours: neighbours, train: train, selection: selection, state: &state,
                original: &pass, progress: progress)
        } catch let reason as ActivationCache.Unavailable {
            wholeModelReason = reason.description
            state = ErasureState(model: model)
            features = try eraseOnWholeModel(
                erased, neighbours: neighbours, train: train, selection: selection, state: &state, progress: progress)
        }
        progress?("erasure (depth \(depth))", erased.count, erased.count)
        let erasureSeconds = Date().timeIntervalSince(started)

        if pass == nil { pass = try OriginalPass(method: self, train: train, selection: selection) }
        let original = try originalHead(features: pass!.features(of: repairSamples(train: train, selection: selection)))
        let repairStarted = Date()
        let repair = try repairHead(
            original: original, features: features, validation: train.subset(selection.validation).labels)
        state.weights.merge(repair.weights) { $1 }
        let patched = state.current.replacingWeights(repair.weights)
        return Outcome(
            weights: state.weights, model: patched, grid: repair.grid, chosen: repair.chosen,
            statistics: state.statistics,
            erased: state.done, skipped: state.skipped, readout: state.readout?.writer,
            wholeModelReason: wholeModelReason, erasureSeconds: erasureSeconds,
            repairSeconds: Date().timeIntervalSince(repairStarted))
    }

    /// What erasing layer by layer has done so far.
    struct ErasureState {
        var current: Model
        var weights: [String: Tensor] = [:]
        var statistics = StatisticsSet()
        var skipped: [UnlearningReport.SkippedErasure] = []
        var done: [WeightLayer] = []
        /// The writer refit to erase the concept from the head's input (`ResidualReadout`), with its rows.
        var readout: (writer: String, rows: Int)?

        init(model: Model) { current = model }
    }

    /// The head's input on the repair samples and on the validation split, row-major.
    struct HeadFeatures {
        var fit: [Double]
        var fitRows: Int
        var validation: [Double]
        var validationRows: Int
    }

    /// Refits `layer` from its statistics on the current model (and the neighbours' mean, when the
    /// target is the neighbours), unless the refit would distort its retain outputs beyond the cap.
    func erase(
        _ layer: WeightLayer, statistics layerStatistics: LayerStatistics, neighbours: LayerRowSink?,
        cross: GuardedRefit.CrossMoment? = nil, state: inout ErasureState
    ) throws {
        try state.statistics.merge(layerStatistics)
        var target: [[Double]]?
        if let neighbours, neighbours.rowCount > 0 {
            let rows = Double(neighbours.rowCount)
            target = neighbours.grams().sums.map { $0.map { $0 / rows } }
        }
        let (patched, distortion) = try erase(
            layer, statistics: layerStatistics, target: target, in: state.current, cross: cross)
        guard distortion <= configuration.erasureDistortionCap else {
            state.skipped.append(UnlearningReport.SkippedErasure(layer: layer.name, distortion: distortion))
            return
        }
        state.weights.merge(patched) { $1 }
        state.current = state.current.replacingWeights(patched)
        state.done.append(layer)
    }

    /// The row sinks of one layer's passes: retain, forget and neighbours, seeded as the statistics
    /// collector seeds them.
    private func sinks(for layer: WeightLayer) -> (retain: LayerRowSink, forget: LayerRowSink, neighbours: LayerRowSink)
    {
        let sinks = (1...3).map { tag in
            let sink = LayerRowSink(
                layer: layer, layerIndex: 0, positionCap: configuration.positionCap, seed: configuration.seed)
            sink.passTag = tag == 2 ? 2 : 1
            return sink
        }
        return (sinks[0], sinks[1], sinks[2])
    }

    /// Erasure with the live values kept between layers: each layer's rows come from running only
    /// the nodes since the previous one.
    /// With compensation and no `original` yet, the original model's cache covers every sample the
    /// method reads and runs on to the end afterwards, to give `original` without a pass of its own.
    private func eraseOnCache(
        _ erased: [WeightLayer], neighbours: [Int]?, train: SampleSet, selection: SampleSelection,
        state: inout ErasureState, original pass: inout OriginalPass?, progress: UnlearningProgress?
    ) throws -> HeadFeatures {
        guard let headUse = head.uses.first, head.uses.count == 1,
            erased.allSatisfy({ $0.uses.count == 1 })
        else {
            throw ActivationCache.Unavailable(description: "a layer has more than one use")
        }
        let fit = repairSamples(train: train, selection: selection)
        let wanted = Set(selection.retain + selection.forget + (neighbours ?? []) + fit + selection.validation).sorted()
        var slot: [Int: Int] = [:]
        for (position, index) in wanted.enumerated() { slot[index] = position }
        func slots(_ indices: [Int]) -> [Int] { indices.map { slot[$0]! } }
        let cache = try ActivationCache(
            model: model, samples: train.subset(wanted), batchSize: configuration.batchSize,
            budget: configuration.activationCacheBytes, makeExecutor: makeExecutor)
        // The original model's rows of the retain samples, kept alongside for compensation.
        let originals =
            configuration.erasureCompensation
            ? try OriginalRows(
                method: self, train: train, selection: selection,
                sharing: pass == nil
                    ? Set(selection.retain + fit + selection.validation + selection.forget).sorted() : nil)
            : nil
        for (index, layer) in erased.enumerated() {
            progress?("erasure (depth \(erased.count))", index, erased.count)
            let use = layer.uses[0]
            try cache.advance(to: use.nodeIndex, model: state.current)
            let value = model.graph.nodes[use.nodeIndex].inputs[use.input]
            let (retain, forget, near) = sinks(for: layer)
            for (sink, indices) in [(retain, selection.retain), (forget, selection.forget), (near, neighbours ?? [])] {
                try cache.rows(of: value, at: slots(indices)) { try sink.consume($0, use: use, useIndex: 0) }
            }
            let statistics = StatisticsCollector.statistics(
                of: layer, retain: StatisticsCollector.result(of: retain),
                forget: StatisticsCollector.result(of: forget))
            var cross: GuardedRefit.CrossMoment?
            if let originals, compensates(layer, rows: statistics.retainRows, after: state.done) {
                let originalSlots = try originals.retainSlots(at: use.nodeIndex)
                let retainSlots = slots(selection.retain)
                cross = try crossMoment(
                    layer,
                    batches: stride(from: 0, to: retainSlots.count, by: configuration.batchSize).map { start in
                        let end = min(retainSlots.count, start + configuration.batchSize)
                        return (
                            { try self.rows(originals.cache, value, Array(originalSlots[start..<end])) },
                            { try self.rows(cache, value, Array(retainSlots[start..<end])) }
                        )
                    })
            }
            try erase(
                layer, statistics: statistics, neighbours: neighbours == nil ? nil : near, cross: cross, state: &state)
        }
        if let readout {
            try cache.advance(to: readout.writer.uses[0].nodeIndex, model: state.current)
            let statisticsSlots = slots(selection.retain + selection.forget)
            func tokenRows(_ name: String) throws -> [Double] {
                var values: [Double] = []
                try cache.rows(of: name, at: statisticsSlots) { values += try readout.tokenRows(of: $0) }
                return values
            }
            try eraseReadout(
                readout, h: try tokenRows(readout.writerInput), residual: try tokenRows(readout.residual),
                forgetRows: selection.forget.count, state: &state)
        }
        try cache.advance(to: headUse.nodeIndex, model: state.current)
        let value = model.graph.nodes[headUse.nodeIndex].inputs[headUse.input]
        func features(_ indices: [Int]) throws -> (values: [Double], rows: Int) {
            var values: [Double] = []
            values.reserveCapacity(indices.count * head.inputDimension)
            try cache.rows(of: value, at: slots(indices)) { chunk in
                guard chunk.rank == 2, chunk.shape[1] == head.inputDimension else {
                    throw ActivationCache.Unavailable(
                        description: "the head reads \(chunk.shape), not one vector per sample")
                }
                values += chunk.floatValues().map(Double.init)
            }
            return (values, indices.count)
        }
        let fitFeatures = try features(fit), validationFeatures = try features(selection.validation)
        if pass == nil { pass = try originals?.runToEnd(fit: fit) }
        return HeadFeatures(
            fit: fitFeatures.values, fitRows: fitFeatures.rows,
            validation: validationFeatures.values, validationRows: validationFeatures.rows)
    }

    /// Erasure with whole-model passes: each layer's statistics come from running the current model.
    private func eraseOnWholeModel(
        _ erased: [WeightLayer], neighbours: [Int]?, train: SampleSet, selection: SampleSelection,
        state: inout ErasureState, progress: UnlearningProgress?
    ) throws -> HeadFeatures {
        let retain = train.subset(selection.retain)
        let forget = train.subset(selection.forget)
        let neighbourSet = neighbours.map { train.subset($0) }
        for (index, layer) in erased.enumerated() {
            progress?("erasure (depth \(erased.count))", index, erased.count)
            let collector = StatisticsCollector(
                layers: [layer], positionCap: configuration.positionCap, seed: configuration.seed,
                batchSize: configuration.batchSize)
            let executor = try makeExecutor(state.current)
            let stats = try collector.collect(executor: executor, retain: retain, forget: forget)
            guard let layerStats = stats[layer.name] else { continue }
            var near: LayerRowSink?
            if let neighbourSet {
                let sink = sinks(for: layer).neighbours
                let taps = layer.uses.enumerated().map { useIndex, use in
                    InputTap(node: use.isNamed ? use.node : "", nodeIndex: use.nodeIndex, input: use.input) { tensor in
                        try sink.consume(tensor, use: use, useIndex: useIndex)
                    }
                }
                try executor.forEachBatch(of: neighbourSet, batchSize: configuration.batchSize, taps: taps) { _, _ in }
                near = sink
            }
            var cross: GuardedRefit.CrossMoment?
            if configuration.erasureCompensation, compensates(layer, rows: layerStats.retainRows, after: state.done) {
                let original = try makeExecutor(model)
                let erasedModel = executor
                cross = try crossMoment(
                    layer,
                    batches: stride(from: 0, to: retain.count, by: configuration.batchSize).map { start in
                        let range = start..<min(retain.count, start + configuration.batchSize)
                        return (
                            { try self.rows(of: layer, in: retain, range, running: original) },
                            { try self.rows(of: layer, in: retain, range, running: erasedModel) }
                        )
                    })
            }
            try erase(layer, statistics: layerStats, neighbours: near, cross: cross, state: &state)
        }
        if let readout {
            let tapped = try readout.tokenRows(
                running: try makeExecutor(state.current), on: train.subset(selection.retain + selection.forget),
                graph: model.graph, batchSize: configuration.batchSize)
            try eraseReadout(
                readout, h: tapped.h, residual: tapped.residual, forgetRows: selection.forget.count, state: &state)
        }
        let collector = try FeatureCollector(layer: head, batchSize: configuration.batchSize)
        let fit = train.subset(repairSamples(train: train, selection: selection))
        let validation = train.subset(selection.validation)
        let executor = try makeExecutor(state.current)
        let features = try collector.features(of: fit, executor: executor)
        let validationFeatures = try collector.features(of: validation, executor: executor)
        guard features.rows == fit.count, validationFeatures.rows == validation.count else {
            throw UsageError(
                "the classifier layer \(head.name) sees \(features.rows) vectors for \(fit.count) samples; the erasure method needs one per sample"
            )
        }
        return HeadFeatures(
            fit: features.values, fitRows: features.rows,
            validation: validationFeatures.values, validationRows: validationFeatures.rows)
    }

    /// Refits the readout's writer on the statistics samples' token rows (retain rows first, then
    /// `forgetRows` forget rows) so that the head's input no longer carries the forget concept.
    func eraseReadout(
        _ readout: ResidualReadout, h: [Double], residual: [Double], forgetRows: Int, state: inout ErasureState
    ) throws {
        let writer = readout.writer, d = writer.inputDimension, width = readout.scale.count
        let n = h.count / max(d, 1)
        guard n > 0, h.count == n * d, residual.count == n * width, forgetRows < n else {
            throw StatisticsError(
                "layer \(writer.name): \(h.count) input and \(residual.count) stream values for the head's token")
        }
        guard let tensor = LayerDiscovery.weightTensor(of: writer, in: state.current.graph) else {
            throw StatisticsError("weight \(writer.name) is not in the model")
        }
        let bias = LayerBias.find(for: writer, in: state.current.graph)
        let isForget = (0..<n).map { $0 >= n - forgetRows }
        let refit = try readout.erase(
            h: h, residual: residual, rows: n, isForget: isForget,
            weight: ProjectionPlan.groupWeights(tensor, layer: writer)[0], bias: bias?.tensor.doubleValues(),
            ridge: configuration.readoutRidge)
        var patched = [
            writer.name: tensor.replacingValues(with: ProjectionPlan.storedOrder([refit.weight], layer: writer))
        ]
        if let bias, let values = refit.bias { patched[bias.source.name] = bias.tensor.replacingValues(with: values) }
        state.weights.merge(patched) { $1 }
        state.current = state.current.replacingWeights(patched)
        state.readout = (writer.name, n)
    }

    /// Whether `layer`'s refit is compensated: a dense layer after an erased one, with enough retain
    /// rows to fit its map from the erased inputs to the original outputs (not a Conv, whose
    /// patches would need rows of their own, nor a layer seeing fewer rows than twice its inputs).
    func compensates(_ layer: WeightLayer, rows: Int, after erased: [WeightLayer]) -> Bool {
        guard !erased.isEmpty, layer.groups == 1, layer.uses.count == 1, case .lastAxis = layer.uses[0].rows else {
            return false
        }
        return rows >= 2 * (layer.inputDimension + 1)
    }

    /// `Σ x_original x_erasedᵀ` over the retain rows of `layer`, batch by batch: each batch gives
    /// the original model's rows and the erased model's rows of the same samples, in the same order.
    func crossMoment(
        _ layer: WeightLayer, batches: [(original: () throws -> [Float], erased: () throws -> [Float])]
    ) throws -> GuardedRefit.CrossMoment {
        let d = layer.inputDimension
        var moment = GuardedRefit.CrossMoment(dimension: d)
        for batch in batches {
            let original = try batch.original(), erased = try batch.erased()
            guard original.count == erased.count, original.count % d == 0 else {
                throw StatisticsError(
                    "layer \(layer.name): the original and erased models give \(original.count) and \(erased.count) values"
                )
            }
            moment.add(original: original, erased: erased, count: original.count / d, dimension: d)
        }
        return moment
    }

    /// The cached value `name` of the samples at `slots`, as floats.
    func rows(_ cache: ActivationCache, _ name: String, _ slots: [Int]) throws -> [Float] {
        var values: [Float] = []
        try cache.rows(of: name, at: slots) { values += $0.floatValues() }
        return values
    }

    /// The input of `layer`'s node for `samples[range]`, running `executor`.
    private func rows(
        of layer: WeightLayer, in samples: SampleSet, _ range: Range<Int>, running executor: any ModelExecutor
    ) throws -> [Float] {
        let sink = FeatureCollector.Sink()
        let collector = try FeatureCollector(layer: layer, batchSize: configuration.batchSize)
        _ = try executor.run(samples.batch(range), taps: [collector.tap(into: sink)])
        return sink.features(dimension: layer.inputDimension).values.map(Float.init)
    }

    /// The guarded refit of one layer from its statistics on the current model: per group, the
    /// concept direction is the difference of the forget and retain rows' means.
    /// `target`: per group, the mean the forget rows are moved to (default: the retain rows' mean).
    /// Returns the patched tensors and the largest retain distortion over the groups.
    func erase(
        _ layer: WeightLayer, statistics: LayerStatistics, target: [[Double]]? = nil,
        in model: Model, cross: GuardedRefit.CrossMoment? = nil
    ) throws -> (tensors: [String: Tensor], distortion: Double) {
        guard statistics.retainRows > 0, statistics.forgetRows > 0,
            statistics.retainSum.count == layer.groups, statistics.forgetSum.count == layer.groups
        else { return ([:], 0) }
        guard let tensor = LayerDiscovery.weightTensor(of: layer, in: model.graph) else {
            throw StatisticsError("weight \(layer.name) is not in the model")
        }
        let bias = LayerBias.find(for: layer, in: model.graph)
        let biasValues = bias?.tensor.doubleValues()
        let groups = ProjectionPlan.groupWeights(tensor, layer: layer)
        let rowsPerGroup = layer.outputDimension / layer.groups
        let d = layer.inputDimension
        var newGroups: [[Double]] = []
        var newBias: [Double] = []
        var distortion = 0.0
        for g in 0..<layer.groups {
            let direction = (0..<d).map {
                statistics.forgetSum[g][$0] / Double(statistics.forgetRows)
                    - (target?[g][$0] ?? statistics.retainSum[g][$0] / Double(statistics.retainRows))
            }
            let groupBias = biasValues.map { Array($0[(g * rowsPerGroup)..<((g + 1) * rowsPerGroup)]) }
            let refit = try GuardedRefit.apply(
                weight: groups[g], bias: groupBias, outputs: rowsPerGroup, dimension: d,
                gram: statistics.retain[g], sum: statistics.retainSum[g], rows: statistics.retainRows,
                directions: [direction], ridge: configuration.erasureRidge,
                compensating: layer.groups == 1 ? cross : nil)
            newGroups.append(refit.weight)
            distortion = max(distortion, refit.distortion)
            newBias += refit.bias ?? []
        }
        var result = [layer.name: tensor.replacingValues(with: ProjectionPlan.storedOrder(newGroups, layer: layer))]
        if let bias { result[bias.source.name] = bias.tensor.replacingValues(with: newBias) }
        return (result, distortion)
    }

    /// Where a model that never learnt the forget classes would put their samples, approximated by
    /// the original model's runner-up: for every forget sample, one training sample (not held out for
    /// validation) of its best retained class, taken in turn within each class.
    func neighbourSamples(train: SampleSet, selection: SampleSelection, forgetLogits logits: LogitTable) -> [Int] {
        let excluded = Set(configuration.forgetClasses).union(configuration.alreadyForgotten)
        let held = Set(selection.validation)
        var pools: [Int: [Int]] = [:]
        for (index, label) in train.labels.enumerated() where !excluded.contains(label) && !held.contains(index) {
            pools[label, default: []].append(index)
        }
        var next: [Int: Int] = [:]
        var chosen: [Int] = []
        for r in 0..<logits.rows {
            var best = -1
            for k in 0..<logits.classes where !excluded.contains(k) && pools[k] != nil {
                if best < 0 || logits.values[r * logits.classes + k] > logits.values[r * logits.classes + best] {
                    best = k
                }
            }
            guard best >= 0, let pool = pools[best] else { continue }
            let position = next[best, default: 0]
            chosen.append(pool[position % pool.count])
            next[best] = position + 1
        }
        return chosen.sorted()
    }

    /// The samples the head repair is fitted on: the statistics' retain and forget samples, then
    /// further training samples not held out for validation, drawn with the seed, up to
    /// `repairSamplesPerInput` per input of the head (d + 1, with the bias) and `repairMaxSamples`.
    /// The ridge fit of a (d + 1)-input map settles long before that, while every sample beyond the
    /// statistics' costs two forward passes (the original model's and the erased one's).
    func repairSamples(train: SampleSet, selection: SampleSelection) -> [Int] {
        let held = Set(selection.validation)
        let pool = train.labels.indices.filter { !held.contains($0) }
        let base = Set(selection.retain + selection.forget).subtracting(held)
        let wanted = min(
            configuration.repairMaxSamples,
            max(base.count, configuration.repairSamplesPerInput * (head.inputDimension + 1)))
        guard pool.count > wanted else { return pool }
        var generator = SplitMix64(seed: SplitMix64.combine(configuration.seed, 0x5245504149))
        let others = pool.filter { !base.contains($0) }.shuffled(using: &generator)
        let chosen =
            base.count >= wanted
            ? Array(base.sorted().shuffled(using: &generator).prefix(wanted))
            : base.sorted() + others.prefix(wanted - base.count)
        return chosen.sorted()
    }

    /// Refits the head on the patched model's features for every ridge × margin pair and keeps the one
    /// the selection rule prefers on the validation split.
    /// The original head and its logits on the repair samples: the same for every depth tried.
    struct OriginalHead {
        var tensor: Tensor
        var bias: LayerBias?
        var weight: [Double]
        var biasValues: [Double]?
        /// Row-major `repair samples × classes`.
        var logits: [Double]
    }

    /// The original model's logits (validation and forget samples) and the head's input (repair
    /// samples), by training-sample index.
    struct OriginalPass {
        private var logitRow: [Int: Int] = [:]
        private var featureRow: [Int: Int] = [:]
        private let table: LogitTable
        private let features: [Double]
        private let dimension: Int

        /// One pass of the original model over every sample the method reads.
        init(method: ErasureMethod, train: SampleSet, selection: SampleSelection) throws {
            let wanted = Set(
                method.repairSamples(train: train, selection: selection) + selection.validation + selection.forget
            ).sorted()
            let samples = train.subset(wanted)
            let collector = try FeatureCollector(layer: method.head, batchSize: method.configuration.batchSize)
            let sink = FeatureCollector.Sink()
            let executor = try method.makeExecutor(method.model)
            let table = try executor.logits(
                of: samples, batchSize: method.configuration.batchSize, taps: [collector.tap(into: sink)])
            let collected = sink.features(dimension: method.head.inputDimension)
            guard collected.rows == samples.count else {
                throw UsageError(
                    "the classifier layer \(method.head.name) sees \(collected.rows) vectors for \(samples.count) samples; the erasure method needs one per sample"
                )
            }
            self.init(
                logits: table, of: wanted, features: collected.values, of: wanted, dimension: method.head.inputDimension
            )
        }

        /// `table` holds the logits of the samples `logitIndices`, `features` the head inputs of
        /// `featureIndices`, both in those orders.
        init(
            logits table: LogitTable, of logitIndices: [Int], features: [Double], of featureIndices: [Int],
            dimension: Int
        ) {
            for (position, index) in logitIndices.enumerated() { logitRow[index] = position }
            for (position, index) in featureIndices.enumerated() { featureRow[index] = position }
            self.table = table
            self.features = features
            self.dimension = dimension
        }

        /// The original logits of the training samples at `indices`.
        func logits(of indices: [Int]) -> LogitTable {
            let k = table.classes
            return LogitTable(
                rows: indices.count, classes: k,
                values: indices.flatMap { table.values[(logitRow[$0]! * k)..<((logitRow[$0]! + 1) * k)] })
        }

        /// The head's original input for the training samples at `indices`, row-major.
        func features(of indices: [Int]) -> [Double] {
            indices.flatMap { features[(featureRow[$0]! * dimension)..<((featureRow[$0]! + 1) * dimension)] }
        }
    }

    /// The original head and its logits on the repair samples' original `features`.
    func originalHead(features: [Double]) throws -> OriginalHead {
        guard let tensor = LayerDiscovery.weightTensor(of: head, in: model.graph) else {
            throw StatisticsError("weight \(head.name) is not in the model")
        }
        let bias = LayerBias.find(for: head, in: model.graph)
        let w0 = ProjectionPlan.groupWeights(tensor, layer: head)[0]
        let b0 = bias?.tensor.doubleValues()
        let logits = HeadRepair.logits(
            features: features, rows: features.count / max(head.inputDimension, 1), dimension: head.inputDimension,
            weight: w0, bias: b0, classes: head.outputDimension)
        return OriginalHead(tensor: tensor, bias: bias, weight: w0, biasValues: b0, logits: logits)
    }

    func repairHead(
        original head0: OriginalHead, features: HeadFeatures, validation labels: [Int]
    )
        throws -> (
            weights: [String: Tensor], grid: [UnlearningReport.RepairPoint], chosen: UnlearningReport.RepairPoint
        )
    {
        let tensor = head0.tensor, bias = head0.bias, w0 = head0.weight, b0 = head0.biasValues
        let classes = head.outputDimension, d = head.inputDimension
        let forgetClasses = Set(configuration.forgetClasses)
        let excluded = Set(configuration.alreadyForgotten)
        let originalLogits = head0.logits
        var grid: [UnlearningReport.RepairPoint] = []
        var solutions: [(weight: [Double], bias: [Double]?)] = []
        for margin in configuration.repairMargins {
            let targets = HeadRepair.targets(
                logits: originalLogits, classes: classes, forgetClasses: forgetClasses.union(excluded), margin: margin)
            for ridge in configuration.repairRidges {
                var solution = try HeadRepair.refit(
                    features: features.fit, rows: features.fitRows, dimension: d, targets: targets,
                    classes: classes, withBias: bias != nil, ridge: ridge, prior: (w0, b0))
                solution.bias = solution.bias.map {
                    HeadRepair.loweringForgetBias(
                        $0, weight: solution.weight, features: features.fit, rows: features.fitRows, dimension: d,
                        classes: classes, forgetClasses: forgetClasses.union(excluded), floor: configuration.repairFloor
                    )
                }
                let logits = HeadRepair.logits(
                    features: features.validation, rows: features.validationRows, dimension: d,
                    weight: solution.weight, bias: solution.bias, classes: classes)
                let table = LogitTable(rows: features.validationRows, classes: classes, values: logits.map(Float.init))
                let metrics = ClassificationMetrics(
                    labels: labels, predictions: table.predictions,
                    forgetClasses: forgetClasses, ignoring: excluded)
                grid.append(
                    UnlearningReport.RepairPoint(
                        ridge: ridge, margin: margin, retainAccuracy: metrics.retainAccuracy,
                        forgetAccuracy: metrics.forgetAccuracy))
                solutions.append(solution)
            }
        }
        let best = SelectionRule(forgetTarget: configuration.forgetTarget).choose(
            grid.map { ($0.retainAccuracy, $0.forgetAccuracy) })
        let chosen = solutions[best]
        var weights = [
            head.name: tensor.replacingValues(with: ProjectionPlan.storedOrder([chosen.weight], layer: head))
        ]
        if let bias, let values = chosen.bias { weights[bias.source.name] = bias.tensor.replacingValues(with: values) }
        return (weights, grid, grid[best])
    }
}

/// How every choice of the default method is made on the validation split: among the candidates whose
/// validation ACC_f is at most the target, the highest validation ACC_r; when none reaches the target,
/// the lowest ACC_f (then the highest ACC_r). Ties keep the earlier candidate.
struct SelectionRule {
    var forgetTarget: Double

    func choose(_ candidates: [(retain: Double?, forget: Double?)]) -> Int {
        precondition(!candidates.isEmpty)
        func key(_ c: (retain: Double?, forget: Double?)) -> (Int, Double, Double) {
            let forget = c.forget ?? 0, retain = c.retain ?? 0
            return forget <= forgetTarget ? (0, -retain, 0) : (1, forget, -retain)
        }
        var best = 0
        for index in candidates.indices.dropFirst() where key(candidates[index]) < key(candidates[best]) {
            best = index
        }
        return best
    }
}
