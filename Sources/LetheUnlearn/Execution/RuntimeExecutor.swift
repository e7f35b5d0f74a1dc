import LetheCore
import LetheIR
import LetheRuntime

/// Runs models on Lethe's interpreter: the model's first runtime input takes the batch, its first
/// output is returned, and input taps become the runtime's activation taps.
struct RuntimeExecutor: ModelExecutor {
    let session: InferenceSession
    let input: String
    let output: String

    init(model: Model, threads: Int?) throws {
        guard let input = model.graph.runtimeInputs.first?.name else { throw UsageError("the model has no input") }
        guard let output = model.graph.outputs.first?.name else { throw UsageError("the model has no output") }
        session = try InferenceSession(model: model, options: SessionOptions(threads: threads))
        self.input = input
        self.output = output
    }

    func run(_ batch: Tensor, taps: [InputTap]) throws -> Tensor {
        let runtimeTaps = taps.map { tap in
            tap.node.isEmpty
                ? ActivationTap(nodeIndex: tap.nodeIndex, port: .input(tap.input), tap.body)
                : ActivationTap(node: tap.node, port: .input(tap.input), tap.body)
        }
        let outputs = try session.run([input: batch], taps: runtimeTaps)
        guard let logits = outputs[output] else { throw UsageError("the model produced no output '\(output)'") }
        return logits
    }

    func run(feeds: [String: Tensor]) throws -> [String: Tensor] {
        try session.run(feeds)
    }

    static func factory(threads: Int?) -> ModelExecutorFactory {
        { model in try RuntimeExecutor(model: model, threads: threads) }
    }
}
