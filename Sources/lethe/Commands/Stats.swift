import ArgumentParser
import LetheCore
import LetheFormats
import LetheUnlearn

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Collect the layer statistics of the retain and forget samples and save them (safetensors).",
        discussion: "Statistics of several files add up: pass each to `lethe unlearn --stats` to use their sum.")

    @Argument(help: "The model (.onnx, or weights with --graph).")
    var model: String

    @OptionGroup var choice: UnlearningOptions

    @Option(name: [.customShort("o"), .long], help: "The .safetensors file to write.")
    var output: String

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var preprocessing: PreprocessingOptions

    func run() throws {
        let runnable = try RunnableCheckpoint.open(model, graph: modelOptions.graph)
        try OutputPath.refuseOverwritingInput(output, inputs: [model, choice.data])
        let names = try preprocessing.classNames(for: runnable.model, modelPath: model)
        let (source, dataNames) = try preprocessing.open(choice.data, for: runnable.model, names: names)
        let running = try modelOptions.running(runnable.model, on: source)
        let configuration = try choice.configuration(
            threads: modelOptions.threads, precision: modelOptions.precision, batch: running.batch, names: dataNames)
        let samples = try preprocessing.samplesForPasses(source, label: choice.data)
        let unlearner = try FileError.wrapping(model) {
            try Unlearner(model: running.model, configuration: configuration)
        }
        let progress = PhaseProgress()
        let statistics = try preprocessing.checkingDecoding([samples]) {
            try FileError.wrapping(model) {
                try unlearner.collectStatistics(samples: samples, progress: progress.callback)
            }
        }
        progress.finish()
        try FileError.wrapping(output) { try statistics.save(to: output) }
        Terminal.note("wrote statistics of \(unlearner.layers.count) layers to \(output)")
    }
}
