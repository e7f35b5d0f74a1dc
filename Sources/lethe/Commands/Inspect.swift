import ArgumentParser
import LetheFormats

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a checkpoint's format, producer, inputs and outputs, ops, tensors and metadata.")

    @Argument(help: "An .onnx, .safetensors, .npz or .npy file.")
    var file: String

    @Flag(help: "Print one JSON document instead of text.")
    var json = false

    func run() throws {
        let summary = ModelSummary(try Checkpoint.open(file))
        if json { try Terminal.printJSON(summary) } else { print(summary.render()) }
    }
}
