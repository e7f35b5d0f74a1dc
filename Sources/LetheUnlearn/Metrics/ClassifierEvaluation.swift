import Dispatch
import LetheCore
import LetheIR
import LetheRuntime

/// Accuracy of a model on labelled samples, run on Lethe's interpreter (`lethe eval`).
public enum ClassifierEvaluation {
    /// Runs `samples` through `model` in batches and scores the first output's arg-max against the
    /// labels. `forgetClasses` only splits the accuracy into ACC_r and ACC_f.
    public static func evaluate(
        model: Model, samples: SampleSet, forgetClasses: Set<Int> = [], batchSize: Int = 64,
        threads: Int? = nil, precision: ProductPrecision = .float32, progress: UnlearningProgress? = nil
    ) throws -> ClassificationMetrics {
        let executor = try RuntimeExecutor(model: model, threads: threads, precision: precision)
        let table = try executor.logits(of: samples, batchSize: batchSize, progress: progress)
        return ClassificationMetrics(
            labels: samples.labels, predictions: table.predictions, forgetClasses: forgetClasses)
    }

    /// The same score over a source read `batchSize` samples at a time, so memory holds two batches
    /// whatever the data's size (an image folder decoded on demand): the next batch is read on
    /// another thread while the model runs the current one. Scores the samples the source delivers
    /// (a source skipping unreadable files delivers fewer than it lists).
    public static func evaluate(
        model: Model, source: any SampleSource, forgetClasses: Set<Int> = [], batchSize: Int = 64,
        threads: Int? = nil, precision: ProductPrecision = .float32, progress: UnlearningProgress? = nil
    ) throws -> ClassificationMetrics {
        let executor = try RuntimeExecutor(model: model, threads: threads, precision: precision)
        let step = max(1, batchSize)
        let ranges = stride(from: 0, to: source.count, by: step).map { $0..<min(source.count, $0 + step) }
        var labels: [Int] = [], predictions: [Int] = []
        var next = ranges.first.map { BatchRead(source, $0) }
        for (index, range) in ranges.enumerated() {
            let batch = try next!.wait()
            next = index + 1 < ranges.count ? BatchRead(source, ranges[index + 1]) : nil
            if batch.count > 0 {
                predictions += try executor.logits(of: batch, batchSize: batchSize).predictions
                labels += batch.labels
            }
            progress?("evaluate", range.upperBound, source.count)
        }
        return ClassificationMetrics(labels: labels, predictions: predictions, forgetClasses: forgetClasses)
    }
}

/// One range of a source being read on a background thread.
private final class BatchRead: @unchecked Sendable {
    private var result: Result<SampleSet, any Error>?
    private let done = DispatchSemaphore(value: 0)

    init(_ source: any SampleSource, _ range: Range<Int>) {
        DispatchQueue.global().async { [self] in
            result = Result { try source.load(range) }
            done.signal()
        }
    }

    /// The batch, once read (the semaphore orders the write of `result` before this read).
    func wait() throws -> SampleSet {
        done.wait()
        return try result!.get()
    }
}
