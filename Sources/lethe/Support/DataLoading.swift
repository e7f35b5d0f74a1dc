import LetheCore
import LetheFormats
import LetheIR

/// How the commands open `--data`/`--test`: class names first (from --labels or the model), then
/// an `.npz` read whole or an image folder read on demand, and, for the commands that make
/// several passes, every sample decoded once into memory.
extension PreprocessingOptions {
    /// Class names from --labels, else from the model's metadata, else nil. A labels file whose
    /// count differs from the model's declared outputs is refused; metadata that does not parse or
    /// does not fit is only noted and ignored, since it was not asked for and may mean something else.
    func classNames(for model: Model, modelPath: String) throws -> ClassNames? {
        let outputs: Int? = if case .fixed(let n)? = model.graph.outputs.first?.shape?.last { n } else { nil }
        if let labels {
            let names = try ClassNames.load(labels)
            if let outputs, outputs != names.names.count {
                throw FileError(
                    path: labels,
                    underlying: UsageError("\(names.names.count) class names for a model with \(outputs) outputs"))
            }
            return names
        }
        do {
            guard let names = try ClassNames.fromMetadata(model.metadata) else { return nil }
            if let outputs, outputs != names.names.count {
                throw UsageError("\(names.names.count) class names for a model with \(outputs) outputs")
            }
            return names
        } catch {
            Terminal.note("\(modelPath): ignoring the class names in its metadata: \(error)")
            return nil
        }
    }

    /// Opens `path` for `model`'s first input: an `.npz` is read whole; an image folder is listed
    /// (its folders matched through `names`, or named by it when there are none) and read on demand.
    func open(
        _ path: String, for model: Model, names: ClassNames?
    ) throws -> (source: any SampleSource, names: ClassNames?) {
        let input = model.graph.runtimeInputs.first
        guard ImageFolder.isFolder(path) else {
            if resize != nil || crop != nil || skipBad {
                throw UsageError("\(path): --resize, --crop and --skip-bad apply to image folders, not .npz files")
            }
            return (
                try SampleFile.load(path, inputDType: input?.dtype ?? .float32, preprocessing: try preprocessing()),
                names
            )
        }
        if let dtype = input?.dtype, dtype != .float32 {
            throw UsageError("\(path): image folders feed float32 inputs, but the model's input is \(dtype.rawValue)")
        }
        let folder = try ImageFolder.scan(path, names: names)
        let layout = try ImageLayout.of(input)
        let samples = try FileError.wrapping(path) {
            try ImageFolderSamples(
                folder: folder, layout: layout, preprocessing: try preprocessing(),
                options: ImageOptions(resize: resize, crop: crop, skipBad: skipBad))
        }
        // Folders named 0, 1, 2, … say nothing a class id does not.
        let named = folder.classNames.names.enumerated().contains { $0.element != String($0.offset) }
        return (samples, named ? folder.classNames : nil)
    }

    /// Samples for the commands that make several passes (unlearn, stats): an image folder whose
    /// sample shape is known beforehand (the model's fixed size or --crop) is decoded lazily, each
    /// file when a pass first needs it and then kept, so files no pass uses are never read; other
    /// folders (and --skip-bad, which renumbers samples) are decoded whole, once, up front.
    func samplesForPasses(_ source: any SampleSource, label: String) throws -> SampleSet {
        if let folder = source as? ImageFolderSamples, let store = folder.lazyStore() { return SampleSet(lazy: store) }
        return try materialize(source, label: label)
    }

    /// Runs `body` (passes over lazily decoded sets) and then throws the first file any pass failed
    /// to decode: such samples read as zeros, so nothing computed from them may be used. A failure
    /// also explains an error `body` threw after it.
    func checkingDecoding<R>(_ sets: [SampleSet?], _ body: () throws -> R) throws -> R {
        func firstFailure() -> (any Error)? {
            sets.compactMap { $0?.lazyStore?.failures.first?.error }.first
        }
        let result: R
        do {
            result = try body()
        } catch {
            throw firstFailure() ?? error
        }
        if let failure = firstFailure() { throw failure }
        return result
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
        Terminal.note(
            "skipped \(skipped.count) unreadable file\(skipped.count == 1 ? "" : "s") of \(folder.count) (first: \(first.path): \(first.reason))"
        )
    }
}
