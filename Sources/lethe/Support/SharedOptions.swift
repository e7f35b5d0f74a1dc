import ArgumentParser
import LetheCore
import LetheFormats
import LetheIR
import LetheRuntime

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

    /// The model to run on `samples` and the batch to run it with: a model exported with a batch of
    /// 1 runs as a free-batch copy when that computes the same, else one sample at a time (noted).
    func running(_ model: Model, on samples: SampleSet) -> (model: Model, batch: Int) {
        let plan = FixedBatch.plan(for: model, probe: samples.batch(0..<min(2, samples.count)), threads: threads)
        if let note = plan.note { Terminal.note("note: \(note)") }
        return (plan.model, min(batch, plan.batchLimit ?? batch))
    }
}

/// How uint8 images in data files become float32 inputs.
struct PreprocessingOptions: ParsableArguments {
    @Option(help: "Multiplier for uint8 image data.")
    var scale: Float = 1.0 / 255.0

    @Option(help: "Mean subtracted after scaling: one value, or one per channel (comma-separated).")
    var mean: String = "0"

    @Option(help: "Standard deviation divided by: one value, or one per channel (comma-separated).")
    var std: String = "1"

    func preprocessing() throws -> ImagePreprocessing {
        func numbers(_ text: String, _ flag: String) throws -> [Float] {
            let values = text.split(separator: ",").map { Float($0.trimmingCharacters(in: .whitespaces)) }
            guard !values.isEmpty, values.allSatisfy({ $0 != nil }) else { throw ValidationError("\(flag) takes numbers, got '\(text)'") }
            return values.map { $0! }
        }
        return ImagePreprocessing(scale: scale, mean: try numbers(mean, "--mean"), std: try numbers(std, "--std"))
    }

    /// Loads `path` as samples for `model`'s first input.
    func samples(_ path: String, for model: Model) throws -> SampleSet {
        let dtype = model.graph.runtimeInputs.first?.dtype ?? .float32
        return try SampleFile.load(path, inputDType: dtype, preprocessing: try preprocessing())
    }
}

/// Parses "3" or "3,7" into class ids.
func parseClasses(_ text: String) throws -> [Int] {
    let parts = text.split(separator: ",", omittingEmptySubsequences: false)
    let ids = parts.map { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard !ids.isEmpty, ids.allSatisfy({ $0 != nil && $0! >= 0 }) else {
        throw ValidationError("expected class ids like 3 or 3,7, got '\(text)'")
    }
    return ids.map { $0! }
}

import Foundation
