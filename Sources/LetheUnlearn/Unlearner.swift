import Foundation
import LetheCore
import LetheIR
import LetheRuntime

/// Which method forgets.
public enum UnlearningMethod: String, Sendable, Codable, CaseIterable {
    /// Guarded erasure of the forget classes from the layers' inputs, then a closed-form repair of the
    /// classifier layer (DESIGN §4b); every choice made on a validation split.
    case erase
    /// The published projection (DESIGN §4), bit for bit.
    case published
}

/// Where the erasure method moves the forget classes' mean at each layer's input.
public enum ErasureTarget: String, Sendable, Codable, CaseIterable {
    /// The mean of the retain rows (LEACE's guard of "forget class or not").
    case retainMean = "retain-mean"
    /// The mean of the rows of each forget sample's runner-up class in the original model: where a
    /// model that never learnt the class would tend to put it.
    case neighbours
}

/// Settings of one unlearning run (DESIGN §4 defaults).
public struct UnlearningConfiguration: Sendable {
    public var forgetClasses: [Int]
    public var method: UnlearningMethod = .erase
    /// Erasure method: how many weight layers before the head are erased (nil: all of them).
    public var erasureDepth: Int?
    /// Erasure method: where the forget rows' mean is moved at each layer.
    public var erasureTarget: ErasureTarget = .neighbours
    /// Erasure method: relative ridge of each layer's refit.
    public var erasureRidge = GuardedRefit.defaultRidge
    /// Erasure method: each dense layer after an erased one is refit toward the original model's
    /// outputs on the retain rows, not its own weights on the erased inputs (`GuardedRefit`), so that
    /// it makes up for what the earlier erasures changed.
    public var erasureCompensation = true
    /// Erasure method: where the head reads one token of a residual stream through a LayerNorm (a
    /// ViT's class token), the last layer writing into the stream is refit so that the head's input
    /// no longer carries the forget concept (`ResidualReadout`); `readoutRidge` is that fit's relative ridge.
    public var readoutErasure = true
    public var readoutRidge = 1e-3
    /// Erasure method: the head repair's candidate ridges (relative) and logit margins.
    public var repairRidges: [Double] = [1e-4, 1e-2, 1]
    public var repairMargins: [Double] = [1, 3]
    /// Erasure method: after the repair, a forgotten class stays at least this far (in logits) below
    /// every fitted sample's best other class.
    public var repairFloor = 1.0
    /// Erasure method: training samples the head repair is fitted on, at most.
    public var repairMaxSamples = 20_000
    /// Erasure method: the head repair is fitted on the statistics' samples and further training
    /// samples up to this many per head input, d + 1 (bench/unlearn, every class: the sample CNN's
    /// ACC_r moved −0.09 points on average against 35 per input, the sample ViT's not at all).
    public var repairSamplesPerInput = 16
    /// The selection rule's bound on validation ACC_f.
    public var forgetTarget = 0.01
    /// Erasure method: validation ACC_r an erasure depth may lose against the original model (half a
    /// point: what a user can hardly tell from noise, and what a deeper erasure may spend to take the
    /// class out of more of the features).
    public var retainBudget = 0.005
    /// Erasure method: a layer whose guarded refit would move more than this share of its retain
    /// outputs' energy is left alone (the first layers, whose few input dimensions all carry the class).
    public var erasureDistortionCap = 0.05
    /// Erasure method: bytes the activations kept between erased layers may take (`ActivationCache`),
    /// for the erased model and again for the original one (compensation); above it, each layer's
    /// statistics come from a whole-model pass instead (slower, same result).
    public var activationCacheBytes = 1 << 30
    /// Classes forgotten by an earlier run: kept out of the retain side.
    public var alreadyForgotten: [Int] = []
    /// `S`.
    public var samples = 900
    public var alphaRetain = 100.0
    public var alphaForget = 3.0
    /// Search the α grid on a validation split instead of using `alphaRetain`/`alphaForget`.
    public var search = false
    public var alphaRetainGrid: [Double] = [10, 30, 100, 300, 1000]
    public var alphaForgetGrid: [Double] = [1, 3, 10, 30, 100]
    /// Samples per class held out of the training data for the search (at most a tenth of each class).
    public var validationPerClass = 100
    public var layerFilter: LayerFilter?
    /// Output positions per image above which positions are sampled (DESIGN §4); nil = all.
    public var positionCap: Int? = 1024
    /// Rows per layer and side a statistics pass aims for (nil: no budget): each image contributes at
    /// most ⌈rows ÷ the pass's images⌉ positions, within `positionCap`. The published code keeps a
    /// random 10,000 rows of each layer's activations; this is the same budget, drawn per image.
    public var rowBudget: Int?
    public var seed: UInt64 = 0
    /// How many times the whole method runs: each later pass measures the model the previous pass
    /// patched (a new statistics pass, new spaces, a new projection, and a new α search when `search`).
    /// 1 is the published method; DESIGN §4 welcomes a second pass as a measured improvement.
    public var passes = 1
    /// BLAS threads (nil: the library's default).
    public var threads: Int?
    /// The operands' format in the model's matrix products on every pass the method runs
    /// (statistics, validation, evaluation); the statistics themselves and the projection stay in
    /// float32 and float64.
    public var precision: ProductPrecision = .float32
    public var batchSize = 64
    /// Compute membership-inference efficacy before and after (needs a test set).
    public var membershipInference = true
    /// Measure probe recovery before and after (needs a test set).
    public var probe = true
    /// Training samples the probe is fitted on (drawn with the seed when --data holds more).
    public var probeMaxSamples = 10_000
    /// Bound on each side of the attacker's training set and on the forget samples it scores.
    public var membershipMaxPerSide: Int? = 5000

    public init(forgetClasses: [Int]) { self.forgetClasses = forgetClasses }
}

/// The outcome: patched weights to write back in the original format, the patched model, and the report.
public struct UnlearningResult: Sendable {
    /// New tensors keyed by initializer name (or Constant output), each in its original dtype.
    public var patchedWeights: [String: Tensor]
    public var model: Model
    /// The statistics the projection used; a run that applies one α pair to fresh statistics
    /// (`StreamedProjection`) keeps only their row counts, no matrices (`collectStatistics` gives them).
    public var statistics: StatisticsSet
    public var report: UnlearningReport
}

/// Gradient-free class forgetting (DESIGN §4): statistics of every weight layer's inputs on retain and
/// forget samples, their eigen-spaces, and an input-side projection of each weight.
public struct Unlearner: Sendable {
    public let model: Model
    public let configuration: UnlearningConfiguration
    public let layers: [WeightLayer]
    public let skippedLayers: [LayerDiscovery.Skipped]
    /// Every weight layer, whatever `--layers` keeps: the classifier layer is found among them.
    let allLayers: [WeightLayer]
    let makeExecutor: ModelExecutorFactory

    /// `executorFactory` runs models; by default Lethe's interpreter.
    public init(
        model: Model, configuration: UnlearningConfiguration, executorFactory: ModelExecutorFactory? = nil
    ) throws {
        guard !configuration.forgetClasses.isEmpty else { throw UsageError("name at least one class to forget") }
        guard configuration.alphaRetain > 0, configuration.alphaForget > 0,
            (configuration.alphaRetainGrid + configuration.alphaForgetGrid).allSatisfy({ $0 > 0 && $0.isFinite })
        else {
            throw UsageError("α scales must be positive")
        }
        guard configuration.batchSize > 0 else { throw UsageError("batch size must be positive") }
        guard configuration.passes >= 1 else { throw UsageError("\(Setting.passes) must be at least 1") }
        if let cap = configuration.positionCap, cap <= 0 {
            throw UsageError("\(Setting.positions) must be positive or 'all'")
        }
        if let budget = configuration.rowBudget, budget <= 0 { throw UsageError("\(Setting.rows) must be positive") }
        // Weights the reader left as unaligned views of the file (protobuf places raw_data anywhere)
        // are aligned once here, not again by every session the method makes.
        self.model = model.aligningInitializers()
        self.configuration = configuration
        let found = LayerDiscovery.discover(in: model, filter: configuration.layerFilter)
        guard !found.layers.isEmpty else {
            throw UsageError(
                configuration.layerFilter == nil
                    ? "the model has no Conv, Gemm or MatMul with a constant weight"
                    : "no weight layer matches \(Setting.layers) \(configuration.layerFilter!.patterns.joined(separator: ","))"
            )
        }
        layers = found.layers
        skippedLayers = found.skipped
        allLayers = configuration.layerFilter == nil ? found.layers : LayerDiscovery.discover(in: model).layers
        makeExecutor =
            executorFactory
            ?? RuntimeExecutor.factory(
                threads: configuration.threads, precision: configuration.precision)
        LinearAlgebra.setThreads(configuration.threads)
    }

    /// Statistics of the retain and forget samples chosen from `samples` (for `lethe stats`).
    public func collectStatistics(samples: SampleSet, progress: UnlearningProgress? = nil) throws -> StatisticsSet {
        let selection = try select(from: samples, validation: false)
        var statistics = try collect(samples: samples, selection: selection, progress: progress)
        statistics.provenance = StatisticsProvenance(model: model, layers: layers, configuration: configuration)
        return statistics
    }

    /// Forgets the configured classes. `statistics` (from `collectStatistics`, possibly summed over
    /// shards) skips the statistics pass; `test` enables the before/after metrics.
    public func run(
        train: SampleSet, test: SampleSet? = nil, statistics: StatisticsSet? = nil,
        progress: UnlearningProgress? = nil
    ) throws -> UnlearningResult {
        if configuration.method == .erase {
            guard statistics == nil else {
                throw UsageError(
                    "statistics files serve the published method (\(Setting.method) published): the erasure method measures each layer on the model with the layers before it already erased"
                )
            }
            guard configuration.rowBudget == nil else {
                throw UsageError(
                    "\(Setting.rows) serves the published method (\(Setting.method) published): the erasure method samples positions per image (\(Setting.positions))"
                )
            }
            return try runErasure(train: train, test: test, progress: progress)
        }
        let started = Date()
        var timings = UnlearningReport.Timings()
        let selection = try select(from: train, validation: configuration.search)

        if let recorded = statistics?.provenance,
            let reason = recorded.mismatch(
                with: StatisticsProvenance(model: model, layers: layers, configuration: configuration))
        {
            throw StatisticsError("the statistics \(reason)")
        }
        var phase = Date()
        var grid: [UnlearningReport.GridPoint] = []
        var alphaRetain = configuration.alphaRetain, alphaForget = configuration.alphaForget
        let stats: StatisticsSet
        var weights: [String: Tensor]
        var plan: ProjectionPlan?
        if statistics == nil, !configuration.search {
            // One α pair from fresh statistics: project while collecting, holding one side's matrices.
            let outcome = try StreamedProjection(
                model: model, layers: layers, collector: collector(), alphaRetain: alphaRetain,
                alphaForget: alphaForget
            ).run(
                executor: makeExecutor(model), retain: train.subset(selection.retain),
                forget: train.subset(selection.forget), progress: progress)
            HeapPolicy.releaseFreed()
            stats = outcome.statistics
            weights = outcome.weights
            timings.projection = outcome.projectionSeconds
            timings.statistics = Date().timeIntervalSince(phase) - outcome.projectionSeconds
        } else {
            stats = try statistics ?? collect(samples: train, selection: selection, progress: progress)
            HeapPolicy.releaseFreed()
            timings.statistics = Date().timeIntervalSince(phase)

            phase = Date()
            progress?("eigen-decomposition", 0, layers.count)
            let prepared = try ProjectionPlan(
                model: model, layers: layers, statistics: stats, decompose: configuration.search)
            plan = prepared
            progress?("eigen-decomposition", layers.count, layers.count)
            timings.decomposition = Date().timeIntervalSince(phase)

            if configuration.search {
                phase = Date()
                var search = try AlphaSearch(
                    plan: prepared, model: model, forgetClasses: Set(configuration.forgetClasses),
                    validation: train.subset(selection.validation), batchSize: configuration.batchSize,
                    makeExecutor: makeExecutor)
                search.ignoring = Set(configuration.alreadyForgotten)
                let outcome = try search.run(
                    alphaRetainGrid: configuration.alphaRetainGrid, alphaForgetGrid: configuration.alphaForgetGrid,
                    progress: progress)
                grid = outcome.grid
                alphaRetain = outcome.best.alphaRetain
                alphaForget = outcome.best.alphaForget
                timings.search = Date().timeIntervalSince(phase)
            }

            phase = Date()
            weights = try prepared.patchedWeights(alphaRetain: alphaRetain, alphaForget: alphaForget)
            timings.projection = Date().timeIntervalSince(phase)
        }
        var patched = model.replacingWeights(weights)

        // Later passes: the same method on the model the previous pass wrote (statistics files
        // describe the original model, so they serve the first pass only).
        var notes: [String] = []
        for pass in 1..<configuration.passes {
            var next = configuration
            next.passes = 1
            let again = try Unlearner(model: patched, configuration: next, executorFactory: makeExecutor)
            let result = try again.run(train: train, progress: progress)
            weights.merge(result.patchedWeights) { $1 }
            patched = result.model
            let t = result.report.timings
            timings.statistics += t.statistics
            timings.decomposition += t.decomposition
            timings.search += t.search
            timings.projection += t.projection
            notes.append(
                String(
                    format: "pass %d: α_r = %g, α_f = %g", pass + 1,
                    result.report.chosenAlphaRetain, result.report.chosenAlphaForget))
        }

        phase = Date()
        var evaluation: UnlearningReport.Evaluation?
        if let test {
            evaluation = try evaluate(original: model, patched: patched, train: train, test: test, progress: progress)
        }
        timings.evaluation = Date().timeIntervalSince(phase)
        timings.total = Date().timeIntervalSince(started)

        var report = UnlearningReport(
            settings: settings(retainClasses: selection.retainClasses, statisticsLoaded: statistics != nil),
            timings: timings, retainSamples: selection.retain.count, forgetSamples: selection.forget.count,
            validationSamples: selection.validation.count,
            layers: plan?.entries.map {
                LayerSummaryBuilder.summary(of: $0, statistics: stats, patched: weights[$0.layer.name], model: model)
            }
                ?? layers.map {
                    LayerSummaryBuilder.summary(of: $0, statistics: stats, original: model, patched: weights[$0.name])
                },
            skippedLayers: skippedLayers, grid: grid, chosenAlphaRetain: alphaRetain, chosenAlphaForget: alphaForget,
            test: evaluation)
        report.notes.append(contentsOf: notes)
        if configuration.search { report.notes += validationNotes(selection: selection, labels: train.labels) }
        if let forget = evaluation?.after.forgetAccuracy, forget > 0.02 {
            report.notes.append(
                String(
                    format:
                        "forget accuracy on the test set is %.1f%% after unlearning; the published method leaves classes that share most features with others partly remembered (the default method, \(Setting.method) erase, chooses its settings on a validation split)",
                    forget * 100))
        }
        return UnlearningResult(patchedWeights: weights, model: patched, statistics: stats, report: report)
    }

    private func runErasure(
        train: SampleSet, test: SampleSet?, progress: UnlearningProgress?
    ) throws -> UnlearningResult {
        let started = Date()
        var timings = UnlearningReport.Timings()
        let selection = try select(from: train, validation: true)
        let method = try ErasureMethod(
            model: model, layers: layers, allLayers: allLayers, configuration: configuration,
            makeExecutor: makeExecutor)
        let outcome = try method.run(train: train, selection: selection, progress: progress)
        timings.statistics = outcome.erasureSeconds
        timings.search = outcome.repairSeconds

        let phase = Date()
        var evaluation: UnlearningReport.Evaluation?
        if let test {
            evaluation = try evaluate(
                original: model, patched: outcome.model, train: train, test: test, progress: progress)
        }
        timings.evaluation = Date().timeIntervalSince(phase)
        timings.total = Date().timeIntervalSince(started)

        let readoutWriter = outcome.readout.flatMap { name in
            outcome.erased.contains { $0.name == name } ? nil : method.candidates.first { $0.name == name }
        }
        let summaries = (outcome.erased + (readoutWriter.map { [$0] } ?? []) + [method.head]).map {
            LayerSummaryBuilder.summary(
                of: $0, statistics: outcome.statistics, original: model, patched: outcome.weights[$0.name])
        }
        var report = UnlearningReport(
            settings: settings(retainClasses: selection.retainClasses, statisticsLoaded: false),
            timings: timings, retainSamples: selection.retain.count, forgetSamples: selection.forget.count,
            validationSamples: selection.validation.count, layers: summaries, skippedLayers: skippedLayers,
            grid: [], chosenAlphaRetain: 0, chosenAlphaForget: 0, test: evaluation)
        report.method = UnlearningMethod.erase.rawValue
        report.erasure = UnlearningReport.Erasure(
            erasedLayers: outcome.erased.map(\.name), readoutWriter: outcome.readout, head: method.head.name,
            depths: outcome.depths,
            originalValidationRetainAccuracy: outcome.originalValidationRetainAccuracy, repairGrid: outcome.grid,
            chosenRidge: outcome.chosen.ridge, chosenMargin: outcome.chosen.margin,
            rule: String(
                format: "validation ACC_f ≤ %g%%, then the highest validation ACC_r", configuration.forgetTarget * 100))
        report.notes += validationNotes(selection: selection, labels: train.labels)
        if let reason = outcome.wholeModelReason {
            report.notes.append("the erasure ran the whole model for every layer (slower) because \(reason)")
        }
        if let forget = evaluation?.after.forgetAccuracy, forget > configuration.forgetTarget {
            report.notes.append(
                String(format: "forget accuracy on the test set is %.1f%% after unlearning", forget * 100))
        }
        return UnlearningResult(
            patchedWeights: outcome.weights, model: outcome.model, statistics: outcome.statistics, report: report)
    }

    /// A warning when the validation split holds too few forget samples to judge a choice.
    private func validationNotes(selection: SampleSelection, labels: [Int]) -> [String] {
        let forget = Set(configuration.forgetClasses)
        let held = selection.validation.filter { forget.contains(labels[$0]) }.count
        guard held < 20 else { return [] }
        return [
            "only \(held) forget-class samples could be held out for validation; choices made on them are coarse (give more samples of the class)"
        ]
    }

    private func collector() -> StatisticsCollector {
        StatisticsCollector(
            layers: layers, positionCap: configuration.positionCap, rowBudget: configuration.rowBudget,
            seed: configuration.seed, batchSize: configuration.batchSize)
    }

    func select(from samples: SampleSet, validation: Bool) throws -> SampleSelection {
        let selection = try SampleSelection(
            labels: samples.labels, forgetClasses: Set(configuration.forgetClasses),
            alreadyForgotten: Set(configuration.alreadyForgotten), samples: configuration.samples,
            validationPerClass: validation ? configuration.validationPerClass : 0)
        guard !selection.forget.isEmpty else {
            throw UsageError("no samples of the forget classes are left for statistics")
        }
        if validation, selection.validation.isEmpty {
            throw UsageError(
                "the data is too small to hold out a validation split for the choices made on it (needs ≥ 10 samples per class)"
            )
        }
        return selection
    }

    func collect(samples: SampleSet, selection: SampleSelection, progress: UnlearningProgress?) throws -> StatisticsSet
    {
        try collector().collect(
            executor: makeExecutor(model), retain: samples.subset(selection.retain),
            forget: samples.subset(selection.forget), progress: progress)
    }

    private func evaluate(
        original: Model, patched: Model, train: SampleSet, test: SampleSet,
        progress: UnlearningProgress?
    ) throws -> UnlearningReport.Evaluation {
        let forget = Set(configuration.forgetClasses)
        let excluded = forget.union(configuration.alreadyForgotten)
        var members: SampleSet?
        var targets: SampleSet?
        if configuration.membershipInference {
            var generator = SplitMix64(seed: SplitMix64.combine(configuration.seed, 0x4D454D))
            let cap = configuration.membershipMaxPerSide ?? Int.max
            let memberPool = train.labels.indices.filter { !excluded.contains(train.labels[$0]) }
            let targetPool = train.labels.indices.filter { forget.contains(train.labels[$0]) }
            let memberCount = min(memberPool.count, test.count, cap)
            if memberCount > 0, !targetPool.isEmpty {
                members = train.subset(Array(memberPool.shuffled(using: &generator).prefix(memberCount)).sorted())
                targets = train.subset(Array(targetPool.shuffled(using: &generator).prefix(cap)).sorted())
            }
        }
        func measure(_ model: Model, _ phase: String) throws -> (ClassificationMetrics, MembershipInference.Result?) {
            let executor = try makeExecutor(model)
            let logits = try executor.logits(
                of: test, batchSize: configuration.batchSize, progress: progress, phase: phase)
            let metrics = ClassificationMetrics(
                labels: test.labels, predictions: logits.predictions, forgetClasses: forget,
                ignoring: Set(configuration.alreadyForgotten))
            guard let members, let targets else { return (metrics, nil) }
            let memberProbabilities = try executor.logits(of: members, batchSize: configuration.batchSize)
                .trueLabelProbabilities(members.labels)
            let targetProbabilities = try executor.logits(of: targets, batchSize: configuration.batchSize)
                .trueLabelProbabilities(targets.labels)
            let mia = try MembershipInference.efficacy(
                members: memberProbabilities, nonMembers: logits.trueLabelProbabilities(test.labels),
                targets: targetProbabilities, seed: configuration.seed,
                maxPerSide: configuration.membershipMaxPerSide)
            return (metrics, mia)
        }
        let before = try measure(original, "evaluate (original)")
        let after = try measure(patched, "evaluate (patched)")
        let probe =
            configuration.probe
            ? try probeRecovery(original: original, patched: patched, train: train, test: test, progress: progress)
            : nil
        return UnlearningReport.Evaluation(
            before: before.0, after: after.0, membershipBefore: before.1, membershipAfter: after.1,
            probe: probe)
    }

    /// Probe recovery before and after (DESIGN §4b): a linear probe fitted on the penultimate
    /// features of the training samples (every class, the forgotten ones too), scored on the forget
    /// classes' test samples. nil when the model has no dense classifier layer to read them at.
    private func probeRecovery(
        original: Model, patched: Model, train: SampleSet, test: SampleSet,
        progress: UnlearningProgress?
    ) throws -> UnlearningReport.ProbeRecovery? {
        guard let head = LayerDiscovery.classifierHead(of: allLayers),
            let collector = try? FeatureCollector(layer: head, batchSize: configuration.batchSize)
        else { return nil }
        let forget = Set(configuration.forgetClasses)
        let classes = head.outputDimension
        guard classes > 1, train.labels.allSatisfy({ $0 >= 0 && $0 < classes }) else { return nil }
        var generator = SplitMix64(seed: SplitMix64.combine(configuration.seed, 0x50524F4245))
        let fitIndices =
            train.count > configuration.probeMaxSamples
            ? Array(train.labels.indices.shuffled(using: &generator).prefix(configuration.probeMaxSamples)).sorted()
            : Array(train.labels.indices)
        let fit = train.subset(fitIndices)
        let targets = test.subset(test.labels.indices.filter { forget.contains(test.labels[$0]) })
        guard targets.count > 0 else { return nil }
        func recovery(_ model: Model, _ phase: String) throws -> Double? {
            progress?(phase, 0, 1)
            let executor = try makeExecutor(model)
            let features = try collector.features(of: fit, executor: executor)
            let scored = try collector.features(of: targets, executor: executor)
            guard features.rows == fit.count, scored.rows == targets.count else { return nil }
            let probe = LinearProbe(
                features: features.values, labels: fit.labels, dimension: head.inputDimension, classes: classes)
            let predictions = probe.predict(scored.values)
            progress?(phase, 1, 1)
            return Double(zip(predictions, targets.labels).filter { $0 == $1 }.count) / Double(targets.count)
        }
        guard let before = try recovery(original, "probe (original)"),
            let after = try recovery(patched, "probe (patched)")
        else { return nil }
        return UnlearningReport.ProbeRecovery(
            before: before, after: after, trainSamples: fit.count, testSamples: targets.count)
    }

    private func settings(retainClasses: [Int], statisticsLoaded: Bool) -> UnlearningReport.Settings {
        UnlearningReport.Settings(
            forgetClasses: configuration.forgetClasses.sorted(),
            alreadyForgotten: configuration.alreadyForgotten.sorted(),
            retainClasses: retainClasses, samples: configuration.samples, alphaRetain: configuration.alphaRetain,
            alphaForget: configuration.alphaForget, search: configuration.search,
            positionCap: configuration.positionCap, rowBudget: configuration.rowBudget,
            seed: configuration.seed, layerPatterns: configuration.layerFilter?.patterns ?? [],
            batchSize: configuration.batchSize,
            threads: configuration.threads, statisticsLoaded: statisticsLoaded, passes: configuration.passes,
            method: configuration.method.rawValue)
    }
}
