import LetheCore
import LetheIR
import LetheRuntime

/// Runs models on Lethe's interpreter: the model's first runtime input takes the batch, its first
/// output is returned, and input taps become the runtime's activation taps.
struct RuntimeExecutor: ModelExecutor {
    let session: InferenceSession
    let input: String
    let output: String

    /// `concurrentBatches: false` keeps every pass to one batch at a time (tests compare the two).
    init(model: Model, threads: Int?, precision: ProductPrecision = .float32, concurrentBatches: Bool = true) throws {
        guard let input = model.graph.runtimeInputs.first?.name else { throw UsageError("the model has no input") }
        guard let output = model.graph.outputs.first?.name else { throw UsageError("the model has no output") }
        session = try InferenceSession(
            model: model,
            options: SessionOptions(threads: threads, concurrentChunks: concurrentBatches, precision: precision))
        self.input = input
        self.output = output
    }

    func run(_ batch: Tensor, taps: [InputTap]) throws -> Tensor {
        try run(batch, taps: taps, threads: nil)
    }

    func run(_ batch: Tensor, taps: [InputTap], threads: Int) throws -> Tensor {
        try run(batch, taps: taps, threads: Optional(threads))
    }

    /// Batches the session would split into chunks run one at a time (each chunk's taps in order).
    func concurrentBatches(sampleShape: [Int], batchSize: Int) -> Int {
        if let chunk = session.maxChunk, batchSize > chunk { return 1 }
        return session.concurrentRuns(sampleShapes: [sampleShape])
    }

    private func run(_ batch: Tensor, taps: [InputTap], threads: Int?) throws -> Tensor {
        let runtimeTaps = taps.map { tap in
            tap.node.isEmpty
                ? ActivationTap(nodeIndex: tap.nodeIndex, port: .input(tap.input), tap.body)
                : ActivationTap(node: tap.node, port: .input(tap.input), tap.body)
        }
        let outputs = try session.run([input: batch], taps: runtimeTaps, threads: threads)
        guard let logits = outputs[output] else { throw UsageError("the model produced no output '\(output)'") }
        return logits
    }

    func run(feeds: [String: Tensor]) throws -> [String: Tensor] {
        try session.run(feeds)
    }

    static func factory(threads: Int?, precision: ProductPrecision = .float32) -> ModelExecutorFactory {
        { model in try RuntimeExecutor(model: model, threads: threads, precision: precision) }
    }
}
