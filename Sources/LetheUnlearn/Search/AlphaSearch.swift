import LetheCore
import LetheIR

/// The α grid search of DESIGN §4: every `(α_r, α_f)` pair patches the model from the same
/// eigen-decompositions and is judged by `ACC_r · (1 − ACC_f)` on a validation split held out of the
/// training data. Ties keep the earlier grid point (smaller α_r, then smaller α_f).
struct AlphaSearch {
    let plan: ProjectionPlan
    let model: Model
    let forgetClasses: Set<Int>
    /// Classes forgotten earlier: in neither ACC_r nor ACC_f.
    var ignoring: Set<Int> = []
    let validation: SampleSet
    let batchSize: Int
    let makeExecutor: ModelExecutorFactory

    struct Outcome {
        var grid: [UnlearningReport.GridPoint]
        var best: UnlearningReport.GridPoint
    }

    init(
        plan: ProjectionPlan, model: Model, forgetClasses: Set<Int>, validation: SampleSet, batchSize: Int,
        makeExecutor: @escaping ModelExecutorFactory
    ) throws {
        guard validation.count > 0 else { throw UsageError("the α search needs a validation split") }
        self.plan = plan
        self.model = model
        self.forgetClasses = forgetClasses
        self.validation = validation
        self.batchSize = batchSize
        self.makeExecutor = makeExecutor
    }

    func run(alphaRetainGrid: [Double], alphaForgetGrid: [Double], progress: UnlearningProgress?) throws -> Outcome {
        var grid: [UnlearningReport.GridPoint] = []
        var best: UnlearningReport.GridPoint?
        let total = alphaRetainGrid.count * alphaForgetGrid.count
        for alphaRetain in alphaRetainGrid {
            for alphaForget in alphaForgetGrid {
                let point = try score(alphaRetain: alphaRetain, alphaForget: alphaForget)
                grid.append(point)
                if best == nil || point.score > best!.score { best = point }
                progress?("α search", grid.count, total)
            }
        }
        guard let best else { throw UsageError("the α grid is empty") }
        return Outcome(grid: grid, best: best)
    }

    func score(alphaRetain: Double, alphaForget: Double) throws -> UnlearningReport.GridPoint {
        let weights = try plan.patchedWeights(alphaRetain: alphaRetain, alphaForget: alphaForget)
        let executor = try makeExecutor(model.replacingWeights(weights))
        let logits = try executor.logits(of: validation, batchSize: batchSize)
        let metrics = ClassificationMetrics(
            labels: validation.labels, predictions: logits.predictions, forgetClasses: forgetClasses,
            ignoring: ignoring)
        return UnlearningReport.GridPoint(
            alphaRetain: alphaRetain, alphaForget: alphaForget, retainAccuracy: metrics.retainAccuracy,
            forgetAccuracy: metrics.forgetAccuracy, score: metrics.searchScore)
    }
}
