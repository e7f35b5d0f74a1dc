import ArgumentParser
import LetheCore
import LetheFormats
import LetheNumPy
import LetheRuntime

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a model on arrays keyed by its input names; write its outputs keyed by output names.")

    @Argument(help: "The model (.onnx, or weights with --graph).")
    var model: String

    @Option(help: "An .npz whose arrays are named after the graph's inputs.")
    var input: String

    @Option(help: "The .npz to write the outputs to.")
    var output: String

    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        let graph = runtime.graph
        let runnable = try RunnableCheckpoint.open(model, graph: graph)
        try OutputPath.refuseOverwritingInput(output, inputs: [model, input] + (graph.map { [$0] } ?? []))
        let session = try FileError.wrapping(model) {
            try InferenceSession(
                model: runnable.model, options: SessionOptions(threads: runtime.threads, precision: runtime.precision))
        }
        let arrays = try FileError.wrapping(input) { try NPZFormat.readArrays(path: input) }
        let feeds = try FileError.wrapping(input) { try session.feeds(from: arrays) }
        let results = try FileError.wrapping(model) { try session.run(feeds) }
        let outputs = session.outputArrays(results)
        try FileError.wrapping(output) { try NPZFormat.writeArrays(outputs, to: output) }
        Terminal.note("wrote \(outputs.count) output\(outputs.count == 1 ? "" : "s") to \(output)")
    }
}
