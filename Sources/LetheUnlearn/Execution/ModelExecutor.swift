import LetheCore
import LetheIR
import Foundation

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
}

extension ModelExecutor {
    /// Executors that only run whole models leave the erasure method on whole-model passes.
    public func run(feeds: [String: Tensor]) throws -> [String: Tensor] {
        throw ActivationCache.Unavailable(description: "the executor runs whole models only")
    }
}

/// Makes an executor for a (possibly patched) model.
public typealias ModelExecutorFactory = @Sendable (Model) throws -> any ModelExecutor

/// Progress of a long step: a phase name, units done, units in all.
public typealias UnlearningProgress = @Sendable (_ phase: String, _ done: Int, _ total: Int) -> Void

extension ModelExecutor {
    /// Runs `samples` batch by batch, feeding `taps`, and hands each batch's sample range and output to
    /// `body`, in order.
    func forEachBatch(
        of samples: SampleSet, batchSize: Int, taps: [InputTap] = [],
        _ body: (Range<Int>, Tensor) throws -> Void
    ) throws {
        var start = 0
        while start < samples.count {
            let end = min(samples.count, start + max(1, batchSize))
            try body(start..<end, try run(samples.batch(start..<end), taps: taps))
            start = end
        }
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
