import ArgumentParser
import LetheUnlearn

/// Sample choice and layer options shared by `unlearn` and `stats`.
struct UnlearningOptions: ParsableArguments {
    @Option(help: "Training data (.npz with x and y) to draw retain and forget samples from.")
    var data: String

    @Option(help: "Classes to forget, comma-separated.", transform: parseClasses)
    var forget: [Int]

    @Option(help: "Classes forgotten by earlier runs: kept out of the retain side.", transform: parseClasses)
    var alreadyForgotten: [Int] = []

    @Option(help: "Samples S: S/(retain classes) per retain class, S of the forget classes.")
    var samples: Int = 900

    @Option(help: "Only patch layers whose name or node matches one of these comma-separated patterns.")
    var layers: String?

    @Option(help: "Output positions per image used for a layer's statistics above 1024 positions, or 'all'.")
    var positions: String = "1024"

    @Option(help: "Seed for every random choice.")
    var seed: UInt64 = 0

    func validate() throws {
        if samples < 1 { throw ValidationError("--samples must be at least 1") }
        if positions != "all", (Int(positions) ?? 0) < 1 { throw ValidationError("--positions takes a positive number or 'all'") }
        if !Set(forget).isDisjoint(with: alreadyForgotten) {
            throw ValidationError("a class cannot be in both --forget and --already-forgotten")
        }
    }

    func configuration(threads: Int?, batch: Int) -> UnlearningConfiguration {
        var configuration = UnlearningConfiguration(forgetClasses: forget)
        configuration.alreadyForgotten = alreadyForgotten
        configuration.samples = samples
        configuration.layerFilter = layers.map { LayerFilter($0) }
        configuration.positionCap = positions == "all" ? nil : Int(positions)
        configuration.seed = seed
        configuration.threads = threads
        configuration.batchSize = batch
        return configuration
    }
}
