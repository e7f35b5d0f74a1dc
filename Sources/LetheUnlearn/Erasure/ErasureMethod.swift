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
    /// Layers erased, in graph order.
    let erased: [WeightLayer]
    let configuration: UnlearningConfiguration
    let makeExecutor: ModelExecutorFactory

    struct Outcome {
        var weights: [String: Tensor]
        var model: Model
        var grid: [UnlearningReport.RepairPoint]
        var chosen: UnlearningReport.RepairPoint
        var statistics: StatisticsSet
        var erasureSeconds: Double
        var repairSeconds: Double
    }

    /// The head is the last dense layer found; the erased layers are the `depth` layers before it
    /// among `layers` (all of them when `depth` is nil).
    init(model: Model, layers: [WeightLayer], allLayers: [WeightLayer], configuration: UnlearningConfiguration,
         makeExecutor: @escaping ModelExecutorFactory) throws {
        guard let head = allLayers.last, !head.isConvolution, head.uses.count == 1, case .lastAxis = head.uses[0].rows else {
            throw UsageError("the erasure method needs the model to end in a Gemm or MatMul classifier layer; use --method published")
        }
        let node = model.graph.nodes[head.uses[0].nodeIndex]
        if node.opType == "Gemm" {
            guard (node.attribute("alpha")?.floatValue ?? 1) == 1, (node.attribute("beta")?.floatValue ?? 1) == 1 else {
                throw UsageError("the classifier layer \(head.name) scales its product (Gemm alpha/beta ≠ 1); use --method published")
            }
        }
        self.model = model
        self.head = head
        let before = layers.filter { $0.name != head.name }
        if let depth = configuration.erasureDepth { erased = Array(before.suffix(depth)) } else { erased = before }
        self.configuration = configuration
        self.makeExecutor = makeExecutor
    }

    func run(train: SampleSet, selection: SampleSelection, progress: UnlearningProgress?) throws -> Outcome {
        let retain = train.subset(selection.retain)
        let forget = train.subset(selection.forget)
        let neighbours = configuration.erasureTarget == .neighbours
            ? try train.subset(neighbourSamples(train: train, selection: selection)) : nil
        var current = model
        var weights: [String: Tensor] = [:]
        var statistics = StatisticsSet()
        let started = Date()
        for (index, layer) in erased.enumerated() {
            progress?("erasure", index, erased.count)
            let collector = StatisticsCollector(layers: [layer], positionCap: configuration.positionCap, seed: configuration.seed,
                                                batchSize: configuration.batchSize)
            let executor = try makeExecutor(current)
            let stats = try collector.collect(executor: executor, retain: retain, forget: forget)
            guard let layerStats = stats[layer.name] else { continue }
            try statistics.merge(layerStats)
            var target: [[Double]]?
            if let neighbours, let side = try collector.collect(executor: executor, retain: neighbours, forget: neighbours.subset([]))[layer.name],
               side.retainRows > 0 {
                target = side.retainSum.map { $0.map { $0 / Double(side.retainRows) } }
            }
            let patched = try erase(layer, statistics: layerStats, target: target, in: current)
            weights.merge(patched) { $1 }
            current = current.replacingWeights(patched)
        }
        progress?("erasure", erased.count, erased.count)
        let erasureSeconds = Date().timeIntervalSince(started)

        let repairStarted = Date()
        let repair = try repairHead(original: model, patched: current, train: train, selection: selection, progress: progress)
        weights.merge(repair.weights) { $1 }
        current = current.replacingWeights(repair.weights)
        return Outcome(weights: weights, model: current, grid: repair.grid, chosen: repair.chosen, statistics: statistics,
                       erasureSeconds: erasureSeconds, repairSeconds: Date().timeIntervalSince(repairStarted))
    }

    /// The guarded refit of one layer from its statistics on the current model: per group, the
    /// concept direction is the difference of the forget and retain rows' means.
    /// `target`: per group, the mean the forget rows are moved to (default: the retain rows' mean).
    func erase(_ layer: WeightLayer, statistics: LayerStatistics, target: [[Double]]? = nil, in model: Model) throws -> [String: Tensor] {
        guard statistics.retainRows > 0, statistics.forgetRows > 0,
              statistics.retainSum.count == layer.groups, statistics.forgetSum.count == layer.groups else { return [:] }
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
        for g in 0..<layer.groups {
            let direction = (0..<d).map {
                statistics.forgetSum[g][$0] / Double(statistics.forgetRows)
                    - (target?[g][$0] ?? statistics.retainSum[g][$0] / Double(statistics.retainRows))
            }
            let extra = try ConceptDirections.forgetSpecific(statistics: statistics, group: g, count: configuration.erasureExtraDirections)
            let groupBias = biasValues.map { Array($0[(g * rowsPerGroup)..<((g + 1) * rowsPerGroup)]) }
            let refit = try GuardedRefit.apply(weight: groups[g], bias: groupBias, outputs: rowsPerGroup, dimension: d,
                                               gram: statistics.retain[g], sum: statistics.retainSum[g], rows: statistics.retainRows,
                                               directions: [direction] + extra, ridge: configuration.erasureRidge)
            newGroups.append(refit.weight)
            newBias += refit.bias ?? []
        }
        var result = [layer.name: tensor.replacingValues(with: ProjectionPlan.storedOrder(newGroups, layer: layer))]
        if let bias { result[bias.source.name] = bias.tensor.replacingValues(with: newBias) }
        return result
    }

    /// Where a model that never learnt the forget classes would put their samples, approximated by
    /// the original model's runner-up: for every forget sample, one training sample (not held out for
    /// validation) of its best retained class, taken in turn within each class.
    func neighbourSamples(train: SampleSet, selection: SampleSelection) throws -> [Int] {
        let excluded = Set(configuration.forgetClasses).union(configuration.alreadyForgotten)
        let forget = train.subset(selection.forget)
        let logits = try makeExecutor(model).logits(of: forget, batchSize: configuration.batchSize)
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
                if best < 0 || logits.values[r * logits.classes + k] > logits.values[r * logits.classes + best] { best = k }
            }
            guard best >= 0, let pool = pools[best] else { continue }
            let position = next[best, default: 0]
            chosen.append(pool[position % pool.count])
            next[best] = position + 1
        }
        return chosen.sorted()
    }

    /// Refits the head on the patched model's features for every ridge × margin pair and keeps the one
    /// the selection rule prefers on the validation split.
    func repairHead(original: Model, patched: Model, train: SampleSet, selection: SampleSelection,
                    progress: UnlearningProgress?) throws -> (weights: [String: Tensor], grid: [UnlearningReport.RepairPoint], chosen: UnlearningReport.RepairPoint) {
        guard let tensor = LayerDiscovery.weightTensor(of: head, in: original.graph) else {
            throw StatisticsError("weight \(head.name) is not in the model")
        }
        let bias = LayerBias.find(for: head, in: original.graph)
        let w0 = ProjectionPlan.groupWeights(tensor, layer: head)[0]
        let b0 = bias?.tensor.doubleValues()
        let classes = head.outputDimension, d = head.inputDimension
        let collector = try FeatureCollector(layer: head, batchSize: configuration.batchSize)
        let fit = train.subset((selection.retain + selection.forget).sorted())
        progress?("head repair", 0, 3)
        let originalFeatures = try collector.features(of: fit, executor: makeExecutor(original))
        let patchedExecutor = try makeExecutor(patched)
        let features = try collector.features(of: fit, executor: patchedExecutor)
        progress?("head repair", 1, 3)
        let validation = train.subset(selection.validation)
        let validationFeatures = try collector.features(of: validation, executor: patchedExecutor)
        progress?("head repair", 2, 3)
        guard features.rows == fit.count, validationFeatures.rows == validation.count else {
            throw UsageError("the classifier layer \(head.name) sees \(features.rows) vectors for \(fit.count) samples; the erasure method needs one per sample")
        }
        let forgetClasses = Set(configuration.forgetClasses)
        let excluded = Set(configuration.alreadyForgotten)
        let originalLogits = HeadRepair.logits(features: originalFeatures.values, rows: originalFeatures.rows, dimension: d,
                                               weight: w0, bias: b0, classes: classes)
        var grid: [UnlearningReport.RepairPoint] = []
        var solutions: [(weight: [Double], bias: [Double]?)] = []
        for margin in configuration.repairMargins {
            let targets = HeadRepair.targets(logits: originalLogits, classes: classes, forgetClasses: forgetClasses.union(excluded), margin: margin)
            for ridge in configuration.repairRidges {
                let solution = try HeadRepair.refit(features: features.values, rows: features.rows, dimension: d, targets: targets,
                                                    classes: classes, withBias: bias != nil, ridge: ridge)
                let logits = HeadRepair.logits(features: validationFeatures.values, rows: validationFeatures.rows, dimension: d,
                                               weight: solution.weight, bias: solution.bias, classes: classes)
                let table = LogitTable(rows: validation.count, classes: classes, values: logits.map(Float.init))
                let metrics = ClassificationMetrics(labels: validation.labels, predictions: table.predictions,
                                                    forgetClasses: forgetClasses, ignoring: excluded)
                grid.append(UnlearningReport.RepairPoint(ridge: ridge, margin: margin, retainAccuracy: metrics.retainAccuracy,
                                                         forgetAccuracy: metrics.forgetAccuracy))
                solutions.append(solution)
            }
        }
        progress?("head repair", 3, 3)
        let best = SelectionRule(forgetTarget: configuration.forgetTarget).choose(grid.map { ($0.retainAccuracy, $0.forgetAccuracy) })
        let chosen = solutions[best]
        var weights = [head.name: tensor.replacingValues(with: ProjectionPlan.storedOrder([chosen.weight], layer: head))]
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
        for index in candidates.indices.dropFirst() where key(candidates[index]) < key(candidates[best]) { best = index }
        return best
    }
}
