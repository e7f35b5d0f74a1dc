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

    /// The same score over a source read `batchSize` samples at a time, so memory holds one batch
    /// whatever the data's size (an image folder decoded on demand). Scores the samples the source
    /// delivers (a source skipping unreadable files delivers fewer than it lists).
    public static func evaluate(model: Model, source: any SampleSource, forgetClasses: Set<Int> = [], batchSize: Int = 64,
                                threads: Int? = nil, progress: UnlearningProgress? = nil) throws -> ClassificationMetrics {
        let executor = try RuntimeExecutor(model: model, threads: threads)
        var labels: [Int] = [], predictions: [Int] = []
        var start = 0
        while start < source.count {
            let end = min(source.count, start + max(1, batchSize))
            let batch = try source.load(start..<end)
            if batch.count > 0 {
                predictions += try executor.logits(of: batch, batchSize: batchSize).predictions
                labels += batch.labels
            }
            progress?("evaluate", end, source.count)
            start = end
        }
        return ClassificationMetrics(labels: labels, predictions: predictions, forgetClasses: forgetClasses)
    }
}
