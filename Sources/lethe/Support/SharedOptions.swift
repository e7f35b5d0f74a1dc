import ArgumentParser
import LetheCore
import LetheFormats
import LetheIR
import LetheRuntime
import Foundation

/// Options every command that runs a model takes, `run` included.
struct RuntimeOptions: ParsableArguments {
    @Option(help: "ONNX graph for a weights-only model file (initializers matched by name).")
    var graph: String?

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int?

    @Option(
        help: ArgumentHelp(
            "Operands of the layers' matrix products: float32, or bfloat16 (about twice as fast on CPUs with AVX512_BF16, outputs about 1e-2 from float32's; float32 elsewhere).",
            valueName: "format"))
    var precision: ProductPrecision = .float32

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }
}

/// Options every command that runs a model over a data set takes: the runtime's, and the batch.
struct ModelOptions: ParsableArguments {
    @OptionGroup var runtime: RuntimeOptions

    @Option(help: "Samples per batch.")
    var batch: Int = 64

    var graph: String? { runtime.graph }
    var threads: Int? { runtime.threads }
    var precision: ProductPrecision { runtime.precision }

    func validate() throws {
        if batch < 1 { throw ValidationError("--batch must be at least 1") }
    }

    /// The model to run on `samples` and the batch to run it with: a model exported with a batch of
    /// 1 runs as a free-batch copy when that computes the same, else one sample at a time (noted).
    func running(_ model: Model, on samples: any SampleSource) throws -> (model: Model, batch: Int) {
        let probe =
            FixedBatch.isFixed(model)
            ? try samples.load(0..<min(2, samples.count)).inputs : Tensor(zeros: .float32, shape: [0])
        let plan = FixedBatch.plan(for: model, probe: probe, threads: threads)
        if let note = plan.note { Terminal.note("note: \(note)") }
        return (plan.model, min(batch, plan.batchLimit ?? batch))
    }
}

/// How data becomes inputs: uint8 images in `.npz` files and image folders alike are scaled and
/// normalised; image folders are also resized and cropped as torchvision's transforms do.
struct PreprocessingOptions: ParsableArguments {
    @Option(help: "Multiplier for uint8 image data (and image files, on their 0–255 scale).")
    var scale: Float = 1.0 / 255.0

    @Option(help: "Mean subtracted after scaling: one value, or one per channel (comma-separated).")
    var mean: String = "0"

    @Option(help: "Standard deviation divided by: one value, or one per channel (comma-separated).")
    var std: String = "1"

    @Option(
        help: ArgumentHelp(
            "Image folders: resize the shorter side to N (bilinear, antialiased, as torchvision's Resize(N)).",
            valueName: "N"))
    var resize: Int?

    @Option(
        help: ArgumentHelp(
            "Image folders: centre crop to N×N (as torchvision's CenterCrop(N)), after --resize.", valueName: "N"))
    var crop: Int?

    @Option(
        help: ArgumentHelp(
            "Class names, one per line in the model's output order: image folders are matched by name, and --forget takes names.",
            valueName: "file"))
    var labels: String?

    @Flag(help: "Image folders: skip files that are not images or are corrupt (counted) instead of stopping.")
    var skipBad = false

    func validate() throws {
        for (flag, value) in [("--resize", resize), ("--crop", crop)] {
            if let value, value < 1 || value > 16384 { throw ValidationError("\(flag) takes 1 to 16384") }
        }
    }

    func preprocessing() throws -> ImagePreprocessing {
        func numbers(_ text: String, _ flag: String) throws -> [Float] {
            let values = text.split(separator: ",").map { Float($0.trimmingCharacters(in: .whitespaces)) }
            guard !values.isEmpty, values.allSatisfy({ $0 != nil }) else {
                throw ValidationError("\(flag) takes numbers, got '\(text)'")
            }
            return values.map { $0! }
        }
        return ImagePreprocessing(scale: scale, mean: try numbers(mean, "--mean"), std: try numbers(std, "--std"))
    }
}

/// Splits "3,7" or "Dress,Coat" into class tokens (ids or names, resolved once the names are known).
func parseClasses(_ text: String) throws -> [String] {
    let parts = text.split(separator: ",", omittingEmptySubsequences: false).map {
        $0.trimmingCharacters(in: .whitespaces)
    }
    guard !parts.contains(where: \.isEmpty) else {
        throw ValidationError("expected class ids or names like 3,7 or Dress,Coat, got '\(text)'")
    }
    return parts
}
extension ProductPrecision: ExpressibleByArgument {}
