import LetheCore
import LetheIR

/// Accuracy of a model on labelled samples, run on Lethe's interpreter (`lethe eval`).
public enum ClassifierEvaluation {
    /// Runs `samples` through `model` in batches and scores the first output's arg-max against the
    /// labels. `forgetClasses` only splits the accuracy into ACC_r and ACC_f.
    public static func evaluate(model: Model, samples: SampleSet, forgetClasses: Set<Int> = [], batchSize: Int = 64,
                                threads: Int? = nil, progress: UnlearningProgress? = nil) throws -> ClassificationMetrics {
        let executor = try RuntimeExecutor(model: model, threads: threads)
        let table = try executor.logits(of: samples, batchSize: batchSize, progress: progress)
        return ClassificationMetrics(labels: samples.labels, predictions: table.predictions, forgetClasses: forgetClasses)
    }
}
