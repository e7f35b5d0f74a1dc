import ArgumentParser
import LetheCore
import LetheFormats
import LetheUnlearn

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Accuracy of a classifier on labelled data: overall, per class, and its commonest confusions.")

    @Argument(help: "The model (.onnx, or weights with --graph).")
    var model: String

    @Option(
        help:
            "An .npz with x (inputs) and y (labels), or a folder with one subfolder of images per class (read batch by batch; docs/data.md)."
    )
    var data: String

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var preprocessing: PreprocessingOptions

    @Flag(help: "Print one JSON document instead of text.")
    var json = false

    func run() throws {
        let runnable = try RunnableCheckpoint.open(model, graph: modelOptions.graph)
        let names = try preprocessing.classNames(for: runnable.model, modelPath: model)
        let (source, dataNames) = try preprocessing.open(data, for: runnable.model, names: names)
        let running = try modelOptions.running(runnable.model, on: source)
        let bar = ProgressBar("evaluating", total: source.count)
        // Decoding errors already name their image file (and are left as they are); the model's own
        // errors get the model's path.
        var metrics = try FileError.wrapping(model) {
            if let samples = source as? SampleSet {
                return try ClassifierEvaluation.evaluate(
                    model: running.model, samples: samples, batchSize: running.batch,
                    threads: modelOptions.threads, precision: modelOptions.precision,
                    progress: { _, done, _ in bar.update(done) })
            }
            return try ClassifierEvaluation.evaluate(
                model: running.model, source: source, batchSize: running.batch,
                threads: modelOptions.threads, precision: modelOptions.precision,
                progress: { _, done, _ in bar.update(done) })
        }
        bar.finish()
        preprocessing.reportSkipped(source)
        metrics.classNames = dataNames?.names
        if json { try Terminal.printJSON(metrics) } else { print(metrics.renderText()) }
    }
}
