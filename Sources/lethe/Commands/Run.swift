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

    @Option(help: "ONNX graph for a weights-only model file.")
    var graph: String?

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        let runnable = try RunnableCheckpoint.open(model, graph: graph)
        try OutputPath.refuseOverwritingInput(output, inputs: [model, input] + (graph.map { [$0] } ?? []))
        let session = try FileError.wrapping(model) { try InferenceSession(model: runnable.model, options: SessionOptions(threads: threads)) }
        let arrays = try FileError.wrapping(input) { try NPZFormat.readArrays(path: input) }
        let feeds = try FileError.wrapping(input) { try session.feeds(from: arrays) }
        let results = try FileError.wrapping(model) { try session.run(feeds) }
        let outputs = session.outputNames.compactMap { name in results[name].map { (name: name, tensor: $0) } }
        try FileError.wrapping(output) { try NPZFormat.writeArrays(outputs, to: output) }
        Terminal.note("wrote \(outputs.count) output\(outputs.count == 1 ? "" : "s") to \(output)")
    }
}
