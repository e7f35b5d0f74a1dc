import ArgumentParser
import LetheCore
import LetheFormats
import LetheRuntime
import LetheUnlearn

/// Sample choice and layer options shared by `unlearn` and `stats`.
struct UnlearningOptions: ParsableArguments {
    @Option(
        help:
            "Training data to draw retain and forget samples from: an .npz with x and y, or a folder with one subfolder of images per class (docs/data.md)."
    )
    var data: String

    @Option(
        help:
            "Classes to forget, comma-separated ids or names (names need --labels, model metadata or an image folder).",
        transform: parseClasses)
    var forget: [String]

    @Option(
        help: "Classes forgotten by earlier runs (ids or names): kept out of the retain side.", transform: parseClasses)
    var alreadyForgotten: [String] = []

    @Option(help: "Samples S: S/(retain classes) per retain class, S of the forget classes.")
    var samples: Int = 900

    @Option(help: "Only patch layers whose name or node matches one of these comma-separated patterns.")
    var layers: String?

    @Option(
        help:
            "Output positions of a convolution (tokens of a sequence) per image that feed a layer's statistics when it has more, or 'all'."
    )
    var positions: String = "1024"

    @Option(
        help:
            "published: rows per layer and side the statistics aim for; each image then gives at most ⌈rows ÷ images⌉ positions (tokens), within --positions (the published code keeps 10,000). Default: no budget."
    )
    var rows: Int?

    @Option(help: "Seed for every random choice.")
    var seed: UInt64 = 0

    func validate() throws {
        if samples < 1 { throw ValidationError("--samples must be at least 1") }
        if positions != "all", (Int(positions) ?? 0) < 1 {
            throw ValidationError("--positions takes a positive number or 'all'")
        }
        if let rows, rows < 1 { throw ValidationError("--rows must be at least 1") }
    }

    /// The configuration, with --forget and --already-forgotten resolved through `names`: an
    /// unknown name is an error listing the known ones.
    func configuration(
        threads: Int?, precision: ProductPrecision, batch: Int, names: ClassNames?
    ) throws -> UnlearningConfiguration {
        let forget = try ClassNames.resolve(self.forget, names: names, flag: "--forget")
        let alreadyForgotten = try ClassNames.resolve(self.alreadyForgotten, names: names, flag: "--already-forgotten")
        if !Set(forget).isDisjoint(with: alreadyForgotten) {
            throw UsageError("a class cannot be in both --forget and --already-forgotten")
        }
        var configuration = UnlearningConfiguration(forgetClasses: forget)
        configuration.alreadyForgotten = alreadyForgotten
        configuration.samples = samples
        configuration.layerFilter = layers.map { LayerFilter($0) }
        configuration.positionCap = positions == "all" ? nil : Int(positions)
        configuration.rowBudget = rows
        configuration.seed = seed
        configuration.threads = threads
        configuration.precision = precision
        configuration.batchSize = batch
        return configuration
    }
}
