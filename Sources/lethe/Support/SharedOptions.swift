import ArgumentParser
import LetheCore
import LetheFormats
import LetheIR

/// Options every command that runs a model takes.
struct ModelOptions: ParsableArguments {
    @Option(help: "ONNX graph for a weights-only model file (initializers matched by name).")
    var graph: String?

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int?

    @Option(help: "Samples per batch.")
    var batch: Int = 64

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if batch < 1 { throw ValidationError("--batch must be at least 1") }
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

    @Option(help: ArgumentHelp("Image folders: resize the shorter side to N (bilinear, antialiased, as torchvision's Resize(N)).", valueName: "N"))
    var resize: Int?

    @Option(help: ArgumentHelp("Image folders: centre crop to N×N (as torchvision's CenterCrop(N)), after --resize.", valueName: "N"))
    var crop: Int?

    @Option(help: ArgumentHelp("Class names, one per line in the model's output order: image folders are matched by name, and --forget takes names.", valueName: "file"))
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
            guard !values.isEmpty, values.allSatisfy({ $0 != nil }) else { throw ValidationError("\(flag) takes numbers, got '\(text)'") }
            return values.map { $0! }
        }
        return ImagePreprocessing(scale: scale, mean: try numbers(mean, "--mean"), std: try numbers(std, "--std"))
    }

    /// Class names from --labels, else from the model's metadata, else nil; refused when the
    /// model's output declares a different number of classes.
    func classNames(for model: Model, modelPath: String) throws -> ClassNames? {
        let names = try labels.map { try ClassNames.load($0) }
            ?? FileError.wrapping(modelPath) { try ClassNames.fromMetadata(model.metadata) }
        if let names, case .fixed(let classes)? = model.graph.outputs.first?.shape?.last, classes != names.names.count {
            let source = labels ?? "\(modelPath) (metadata)"
            throw FileError(path: source, underlying: UsageError("\(names.names.count) class names for a model with \(classes) outputs"))
        }
        return names
    }

    /// Opens `path` for `model`'s first input: an `.npz` is read whole; an image folder is listed
    /// (its folders matched through `names`, or named by it when there are none) and read on demand.
    func open(_ path: String, for model: Model, names: ClassNames?) throws -> (source: any SampleSource, names: ClassNames?) {
        let input = model.graph.runtimeInputs.first
        guard ImageFolder.isFolder(path) else {
            if resize != nil || crop != nil || skipBad {
                throw UsageError("\(path): --resize, --crop and --skip-bad apply to image folders, not .npz files")
            }
            return (try SampleFile.load(path, inputDType: input?.dtype ?? .float32, preprocessing: try preprocessing()), names)
        }
        if let dtype = input?.dtype, dtype != .float32 {
            throw UsageError("\(path): image folders feed float32 inputs, but the model's input is \(dtype.rawValue)")
        }
        let folder = try ImageFolder.scan(path, names: names)
        let layout = try ImageLayout.of(input)
        let samples = try FileError.wrapping(path) {
            try ImageFolderSamples(folder: folder, layout: layout, preprocessing: try preprocessing(),
                                   options: ImageOptions(resize: resize, crop: crop, skipBad: skipBad))
        }
        // Folders named 0, 1, 2, … say nothing a class id does not.
        let named = folder.classNames.names.enumerated().contains { $0.element != String($0.offset) }
        return (samples, named ? folder.classNames : nil)
    }

    /// Every sample of `source` in memory, each image decoded once, with a progress bar.
    func materialize(_ source: any SampleSource, label: String) throws -> SampleSet {
        let bar = ProgressBar("decoding \(label)", total: source.count)
        let samples = try source.materialize(chunk: 256, progress: { done, _ in bar.update(done) })
        bar.finish()
        reportSkipped(source)
        return samples
    }

    /// Says how many files --skip-bad left out, naming the first.
    func reportSkipped(_ source: any SampleSource) {
        guard let folder = source as? ImageFolderSamples else { return }
        let skipped = folder.skipped
        guard let first = skipped.first else { return }
        Terminal.note("skipped \(skipped.count) unreadable file\(skipped.count == 1 ? "" : "s") of \(folder.count) (first: \(first.path): \(first.reason))")
    }
}

/// Splits "3,7" or "Dress,Coat" into class tokens (ids or names, resolved once the names are known).
func parseClasses(_ text: String) throws -> [String] {
    let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
    guard !parts.contains(where: \.isEmpty) else {
        throw ValidationError("expected class ids or names like 3,7 or Dress,Coat, got '\(text)'")
    }
    return parts
}

import Foundation
