import ArgumentParser
import Foundation
import LetheCore
import LetheFormats
import LetheUnlearn

struct Unlearn: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Forget classes from a classifier and write the patched model in its own format.",
        discussion: "Only the patched weight tensors change; every other byte of the file stays as it was.")

    @Argument(help: "The model (.onnx, or .safetensors/.npz with --graph).")
    var model: String

    @OptionGroup var choice: UnlearningOptions

    @Option(name: [.customShort("o"), .long], help: "Where to write the patched model (same format as MODEL).")
    var output: String

    @Option(help: "Test data (.npz with x and y) for accuracy and membership inference before and after.")
    var test: String?

    @Option(help: "Retain-space scale α_r.")
    var alphaRetain: Double = 100

    @Option(help: "Forget-space scale α_f.")
    var alphaForget: Double = 3

    @Flag(help: "Search the α grid on a validation split held out of --data.")
    var search = false

    @Option(help: "Run the method this many times, each pass on the model the previous one patched (1: the published method).")
    var passes = 1

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
        if alphaRetain <= 0 || alphaForget <= 0 { throw ValidationError("α scales must be positive") }
        if passes < 1 || passes > 10 { throw ValidationError("--passes takes 1 to 10") }
    }

    func run() throws {
        guard CheckpointFormat.fromExtension(output) != nil else {
            throw UsageError("cannot tell the format of '\(output)': use .onnx, .safetensors or .npz")
        }
        let runnable = try RunnableCheckpoint.open(model, graph: modelOptions.graph)
        if CheckpointFormat.fromExtension(output) != runnable.checkpoint.format {
            throw UsageError("the output keeps the model's format: name it .\(runnable.checkpoint.format.rawValue)")
        }
        try OutputPath.refuseOverwritingInput(output, inputs: [choice.data] + [modelOptions.graph, test, report].compactMap { $0 })
        let backup = try OutputPath.prepare(output, inputs: [model], inPlace: inPlace)
        defer { backup?.release() }
        let train = try preprocessing.samples(choice.data, for: runnable.model)
        let testSet = try test.map { try preprocessing.samples($0, for: runnable.model) }
        var configuration = choice.configuration(threads: modelOptions.threads, batch: modelOptions.batch)
        configuration.alphaRetain = alphaRetain
        configuration.alphaForget = alphaForget
        configuration.search = search
        configuration.passes = passes
        let unlearner = try FileError.wrapping(model) { try Unlearner(model: runnable.model, configuration: configuration) }
        let statistics = stats.isEmpty ? nil : try StatisticsSet.load(adding: stats)
        let progress = PhaseProgress()
        let result = try FileError.wrapping(model) {
            try unlearner.run(train: train, test: testSet, statistics: statistics, progress: progress.callback)
        }
        progress.finish()
        try runnable.writePatched(result.patchedWeights, to: output)
        if let report {
            try AtomicFileWriter.write(to: report) { try $0.write(Array(ReportHTML.render(result.report).utf8)) }
        }
        if json { try Terminal.printJSON(result.report) } else { print(result.report.renderText()) }
        Terminal.note("wrote \(output) (\(result.patchedWeights.count) tensors patched)" + (report.map { ", report \($0)" } ?? ""))
    }
}

/// Shows the unlearner's phases as progress bars on a terminal.
final class PhaseProgress: @unchecked Sendable {
    private var bar: ProgressBar?
    private var phase = ""
    private let lock = NSLock()

    var callback: UnlearningProgress {
        { [self] phase, done, total in
            lock.lock(); defer { lock.unlock() }
            if phase != self.phase {
                bar?.finish()
                self.phase = phase
                bar = ProgressBar(phase, total: total)
            }
            bar?.update(done)
        }
    }

    func finish() { bar?.finish() }
}
