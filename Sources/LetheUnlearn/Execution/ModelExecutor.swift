import Foundation
import LetheCore
import LetheIR

/// A request for the value entering input `input` of a node of the original graph during a run.
public struct InputTap: Sendable {
    /// The node's name; empty for an unnamed node, which is addressed by `nodeIndex`.
    public var node: String
    /// The node's index in the original `graph.nodes`.
    public var nodeIndex: Int
    public var input: Int
    public var body: @Sendable (Tensor) throws -> Void

    public init(node: String, nodeIndex: Int, input: Int, body: @escaping @Sendable (Tensor) throws -> Void) {
        self.node = node
        self.nodeIndex = nodeIndex
        self.input = input
        self.body = body
    }
}

/// What Unlearn needs from a runtime: run one batch through the model, feeding taps, and return the
/// model's first output (the logits). Unlearn never computes a layer itself.
public protocol ModelExecutor {
    func run(_ batch: Tensor, taps: [InputTap]) throws -> Tensor
    /// Runs the model on its inputs by name and returns every graph output by name: how the
    /// erasure method runs one stretch of a graph at a time (`ActivationCache`).
    func run(feeds: [String: Tensor]) throws -> [String: Tensor]
    /// How many batches of at most `batchSize` samples shaped `sampleShape` are best run at once,
    /// each on its own thread with `run(_:taps:threads: 1)`.
    func concurrentBatches(sampleShape: [Int], batchSize: Int) -> Int
    /// `run(_:taps:)` with its kernels on at most `threads` threads.
    func run(_ batch: Tensor, taps: [InputTap], threads: Int) throws -> Tensor
}

extension ModelExecutor {
    /// Executors that only run whole models leave the erasure method on whole-model passes.
    public func run(feeds: [String: Tensor]) throws -> [String: Tensor] {
        throw ActivationCache.Unavailable(description: "the executor runs whole models only")
    }

    /// Executors that say nothing run one batch at a time.
    public func concurrentBatches(sampleShape: [Int], batchSize: Int) -> Int { 1 }

    public func run(_ batch: Tensor, taps: [InputTap], threads: Int) throws -> Tensor {
        try run(batch, taps: taps)
    }
}

/// Makes an executor for a (possibly patched) model.
public typealias ModelExecutorFactory = @Sendable (Model) throws -> any ModelExecutor

/// Progress of a long step: a phase name, units done, units in all.
public typealias UnlearningProgress = @Sendable (_ phase: String, _ done: Int, _ total: Int) -> Void

extension ModelExecutor {
    /// Runs `samples` batch by batch, feeding `taps`, and hands each batch's sample range and output to
    /// `body`, in order.
    ///
    /// When the executor runs such batches best side by side (`concurrentBatches`), they run so, each
    /// on one thread, if there are no taps or `tapsTakeTurns`: the taps then fire on several threads
    /// at once, in any order, and must order their own accumulation (`BatchContext.inTurn`). `body`
    /// still sees the batches one at a time and in order.
    func forEachBatch(
        of samples: SampleSet, batchSize: Int, taps: [InputTap] = [], tapsTakeTurns: Bool = false,
        _ body: (Range<Int>, Tensor) throws -> Void
    ) throws {
        let size = max(1, batchSize)
        let batches = (samples.count + size - 1) / size
        let workers =
            taps.isEmpty || tapsTakeTurns
            ? min(batches, concurrentBatches(sampleShape: samples.sampleShape, batchSize: size)) : 1
        guard workers <= 1 else {
            // As many batches for each worker, none larger than asked: 900 samples in 15 batches of
            // 64 left one worker idle for the last (16 of 57 keep both busy to the end).
            let even = (batches + workers - 1) / workers * workers
            let balanced = (samples.count + even - 1) / even
            return try forEachBatchConcurrently(of: samples, batchSize: balanced, workers: workers, taps: taps, body)
        }
        var start = 0
        while start < samples.count {
            let end = min(samples.count, start + size)
            try body(start..<end, try run(samples.batch(start..<end), taps: taps))
            start = end
        }
    }

    /// `forEachBatch` on `workers` threads: each takes the next batch not yet taken and runs it on its
    /// own; outputs wait until those of every earlier batch have gone to `body` (at most one per other
    /// worker waits). The first error stops the pass, waking any tap waiting for its turn.
    private func forEachBatchConcurrently(
        of samples: SampleSet, batchSize: Int, workers: Int, taps: [InputTap],
        _ body: (Range<Int>, Tensor) throws -> Void
    ) throws {
        let batches = (samples.count + batchSize - 1) / batchSize
        let count = samples.count
        let range: @Sendable (Int) -> Range<Int> = { ($0 * batchSize)..<min(count, ($0 + 1) * batchSize) }
        let order = BatchOrder()
        let lock = NSLock()
        let state = ConcurrentPassState()
        withoutActuallyEscaping(body) { body in
            let shared = UnsafeSendable((self as any ModelExecutor, body))
            DispatchQueue.concurrentPerform(iterations: workers) { _ in
                let (executor, body) = shared.value
                while true {
                    lock.lock()
                    let index = state.taken
                    state.taken += 1
                    let stop = state.failure != nil || index >= batches
                    lock.unlock()
                    if stop { return }
                    do {
                        let context = BatchContext(index: index, threads: 1, order: order)
                        let output = try BatchContext.$current.withValue(context) {
                            try executor.run(samples.batch(range(index)), taps: taps, threads: 1)
                        }
                        lock.lock()
                        defer { lock.unlock() }
                        state.waiting[index] = output
                        while state.failure == nil, let next = state.waiting.removeValue(forKey: state.delivered) {
                            try body(range(state.delivered), next)
                            state.delivered += 1
                        }
                    } catch {
                        lock.lock()
                        // A batch stopped because another failed reports nothing of its own.
                        if state.failure == nil || state.failure is BatchOrder.Cancelled { state.failure = error }
                        lock.unlock()
                        order.cancel()
                    }
                }
            }
        }
        if let failure = state.failure { throw failure }
    }

    /// Runs `samples` in batches, feeding `taps`, and returns the logits as N × K floats.
    func logits(
        of samples: SampleSet, batchSize: Int, taps: [InputTap] = [], progress: UnlearningProgress? = nil,
        phase: String = "evaluate"
    ) throws -> LogitTable {
        var values: [Float] = []
        var classes = 0
        try forEachBatch(of: samples, batchSize: batchSize, taps: taps) { range, output in
            let rows = range.count
            guard output.rank >= 1, output.shape[0] == rows, output.elementCount % max(rows, 1) == 0 else {
                throw UsageError("the model's first output \(output.shape) does not have one row per sample (\(rows))")
            }
            let width = output.elementCount / max(rows, 1)
            if classes == 0 { classes = width; values.reserveCapacity(samples.count * width) }
            guard width == classes else {
                throw UsageError("the model's output width changed from \(classes) to \(width)")
            }
            values += output.floatValues()
            progress?(phase, range.upperBound, samples.count)
        }
        return LogitTable(rows: samples.count, classes: classes, values: values)
    }
}

/// Model outputs of N samples, row-major N × K.
public struct LogitTable: Sendable {
    public var rows: Int
    public var classes: Int
    public var values: [Float]

    public init(rows: Int, classes: Int, values: [Float]) {
        precondition(values.count == rows * classes)
        self.rows = rows
        self.classes = classes
        self.values = values
    }

    /// The predicted class of each row (first maximum).
    public var predictions: [Int] {
        (0..<rows).map { r in
            var best = 0
            for k in 1..<max(classes, 1) where values[r * classes + k] > values[r * classes + best] { best = k }
            return best
        }
    }

    /// Probability of `labels[r]` per row: softmax of the logits, or the values themselves when each
    /// row already is a probability distribution (a model ending in Softmax).
    public func trueLabelProbabilities(_ labels: [Int]) -> [Double] {
        (0..<rows).map { r in
            let row = values[(r * classes)..<((r + 1) * classes)].map(Double.init)
            let label = labels[r]
            guard label >= 0, label < classes else { return 0 }
            let sum = row.reduce(0, +)
            if row.allSatisfy({ $0 >= 0 && $0 <= 1 }), abs(sum - 1) < 1e-3 { return row[label] }
            let top = row.max() ?? 0
            let exps = row.map { Foundation.exp($0 - top) }
            return exps[label] / exps.reduce(0, +)
        }
    }
}

/// Where the workers of a concurrent `forEachBatch` stand; read and written only under its lock.
private final class ConcurrentPassState: @unchecked Sendable {
    var taken = 0
    var delivered = 0
    /// Outputs of finished batches waiting for an earlier one.
    var waiting: [Int: Tensor] = [:]
    var failure: (any Error)?
}
