import ArgumentParser
import Foundation
import LetheCore
import LetheFormats
import LetheUnlearn

struct Unlearn: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Forget classes from a classifier and write the patched model in its own format.",
        discussion:
            "Only the patched tensors change (weights, and with the default method the biases of the erased layers and the classifier layer); every other byte of the file stays as it was. docs/unlearning.md describes both methods."
    )

    @Argument(help: "The model (.onnx, or .safetensors/.npz with --graph).")
    var model: String

    @OptionGroup var choice: UnlearningOptions

    @Option(name: [.customShort("o"), .long], help: "Where to write the patched model (same format as MODEL).")
    var output: String

    @Option(
        help:
            "Test data (.npz with x and y, or an image folder) for accuracy, membership inference and probe recovery before and after (only measured, never used to choose)."
    )
    var test: String?

    @Option(
        help: ArgumentHelp(
            "erase (default): erase the classes from the layers' inputs and repair the classifier layer, every choice made on a validation split held out of --data; published: the paper's projection, bit for bit.",
            valueName: "erase|published"))
    var method: UnlearningMethod = .erase

    @Option(
        help:
            "erase: weight layers before the classifier layer to erase, counted back from it (default: chosen on the validation split, from all of them down to none)."
    )
    var depth: Int?

    @Option(help: "published: retain-space scale α_r (default 100).")
    var alphaRetain: Double?

    @Option(help: "published: forget-space scale α_f (default 3).")
    var alphaForget: Double?

    @Flag(help: "published: search the α grid on a validation split held out of --data.")
    var search = false

    @Option(help: "published: run the method this many times, each pass on the model the previous one patched.")
    var passes: Int?

    @Option(help: "Statistics files from `lethe stats` to use instead of a statistics pass (they add up).")
    var stats: [String] = []

    @Option(help: "Write a self-contained HTML report here.")
    var report: String?

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var preprocessing: PreprocessingOptions

    @Flag(help: "Print the report as one JSON document instead of text.")
    var json = false

    @Flag(help: "Allow -o to be MODEL: the file is replaced only once the patched one is complete.")
    var inPlace = false

    func validate() throws {
        if [alphaRetain, alphaForget].contains(where: { ($0 ?? 1) <= 0 }) {
            throw ValidationError("α scales must be positive")
        }
        if let passes, passes < 1 || passes > 10 { throw ValidationError("--passes takes 1 to 10") }
        if let depth, depth < 0 { throw ValidationError("--depth must be 0 or more") }
        if method == .erase {
            let published = [
                alphaRetain.map { _ in "--alpha-retain" }, alphaForget.map { _ in "--alpha-forget" },
                search ? "--search" : nil, passes.map { _ in "--passes" }, stats.isEmpty ? nil : "--stats"
            ].compactMap { $0 }
            if let flag = published.first { throw ValidationError("\(flag) belongs to --method published") }
        } else if depth != nil {
            throw ValidationError("--depth belongs to --method erase")
        }
    }

    func run() throws {
        try RunnableCheckpoint.checkPatchedOutputName(output)
        let runnable = try RunnableCheckpoint.open(model, graph: modelOptions.graph)
        try runnable.checkPatchedOutput(output)
        try OutputPath.refuseOverwritingInput(
            output, inputs: [choice.data] + [modelOptions.graph, test, report].compactMap { $0 })
        // Names and classes are settled before anything is decoded or written, so a wrong name
        // costs nothing and leaves no file behind.
        let names = try preprocessing.classNames(for: runnable.model, modelPath: model)
        let (trainSource, dataNames) = try preprocessing.open(choice.data, for: runnable.model, names: names)
        // The same folder (or file) as --test is opened once, so its samples are decoded once.
        let sameData = test.map { OutputPath.same($0, choice.data) } ?? false
        let testSource =
            sameData ? nil : try test.map { try preprocessing.open($0, for: runnable.model, names: dataNames).source }
        // A model exported with a batch of 1 runs as its free-batch copy; the output is written from the file.
        let running = try modelOptions.running(runnable.model, on: trainSource)
        var configuration = try choice.configuration(
            threads: modelOptions.threads, precision: modelOptions.precision, batch: running.batch, names: dataNames)
        let backup = try OutputPath.prepare(output, inputs: [model], inPlace: inPlace)
        defer { backup?.release() }
        let train = try preprocessing.samplesForPasses(trainSource, label: choice.data)
        let testSet =
            sameData ? train : try testSource.map { try preprocessing.samplesForPasses($0, label: test ?? "") }
        configuration.method = method
        configuration.erasureDepth = depth
        configuration.alphaRetain = alphaRetain ?? configuration.alphaRetain
        configuration.alphaForget = alphaForget ?? configuration.alphaForget
        configuration.search = search
        configuration.passes = passes ?? 1
        let unlearner = try FileError.wrapping(model) {
            try Unlearner(model: running.model, configuration: configuration)
        }
        let statistics = stats.isEmpty ? nil : try StatisticsSet.load(adding: stats)
        let progress = PhaseProgress()
        var result = try preprocessing.checkingDecoding([train, testSet]) {
            try FileError.wrapping(model) {
                try unlearner.run(train: train, test: testSet, statistics: statistics, progress: progress.callback)
            }
        }
        result.report.classNames = dataNames?.names
        progress.finish()
        try runnable.writePatched(result.patchedWeights, to: output)
        if let report {
            try AtomicFileWriter.write(to: report) { try $0.write(Array(ReportHTML.render(result.report).utf8)) }
        }
        if json { try Terminal.printJSON(result.report) } else { print(result.report.renderText()) }
        Terminal.note(
            "wrote \(output) (\(result.patchedWeights.count) tensors patched)" + (report.map { ", report \($0)" } ?? "")
        )
    }
}

extension UnlearningMethod: ExpressibleByArgument {}
