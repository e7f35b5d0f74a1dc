import ArgumentParser
import LetheCore
import LetheFormats
import LetheUnlearn

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Accuracy of a classifier on labelled data: overall, per class, and its commonest confusions.")

    @Argument(help: "The model (.onnx, or weights with --graph).")
    var model: String

    @Option(help: "An .npz with x (inputs) and y (labels).")
    var data: String

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var preprocessing: PreprocessingOptions

    @Flag(help: "Print one JSON document instead of text.")
    var json = false

    func run() throws {
        let runnable = try RunnableCheckpoint.open(model, graph: modelOptions.graph)
        let samples = try preprocessing.samples(data, for: runnable.model)
        let running = modelOptions.running(runnable.model, on: samples)
        let bar = ProgressBar("evaluating", total: samples.count)
        let metrics = try FileError.wrapping(model) {
            try ClassifierEvaluation.evaluate(model: running.model, samples: samples, batchSize: running.batch,
                                              threads: modelOptions.threads, progress: { _, done, _ in bar.update(done) })
        }
        bar.finish()
        if json { try Terminal.printJSON(metrics) } else { print(metrics.renderText()) }
    }
}
