import LetheCore
import LetheIR
import LetheONNX
import LetheNumPy
import LetheSafetensors

/// A model file opened in any supported format, remembering where it came from so that writing
/// it back preserves every byte Lethe did not change.
public struct Checkpoint: Sendable {
    public let path: String
    public let format: CheckpointFormat
    /// The model as read; for weights-only formats a graph of initializers and no nodes.
    public var model: Model
    let source: Source

    enum Source: Sendable {
        case onnx(ONNXFile)
        case safetensors(SafetensorsFile)
        case npz(NPZFile)
        case npy(NPYFile)
    }

    /// Opens `path`, detecting its format from its content.
    public static func open(_ path: String, limits: Limits = .default) throws -> Checkpoint {
        let format = try CheckpointFormat.detect(path: path)
        return try FileError.wrapping(path) {
            switch format {
            case .onnx:
                let file = try ONNXFormat.read(path: path, limits: limits)
                return Checkpoint(path: path, format: format, model: file.model, source: .onnx(file))
            case .safetensors:
                let file = try SafetensorsFormat.read(path: path, limits: limits)
                return Checkpoint(path: path, format: format, model: file.model, source: .safetensors(file))
            case .npz:
                let file = try NPZFormat.read(path: path, limits: limits)
                return Checkpoint(path: path, format: format, model: file.model, source: .npz(file))
            case .npy:
                let file = try NPYFormat.read(path: path, limits: limits)
                let array = Initializer(name: NPYFile.arrayName(forPath: path), tensor: file.tensor)
                return Checkpoint(
                    path: path, format: format, model: Model(graph: Graph(initializers: [array])),
                    source: .npy(file))
            }
        }
    }

    /// Writes `model` (by default this checkpoint's own) in this checkpoint's format to `path`,
    /// keeping every byte of the original that the model did not change.
    public func write(_ model: Model? = nil, to path: String) throws {
        let model = model ?? self.model
        try FileError.wrapping(path) {
            switch source {
            case .onnx(let file): try ONNXFormat.write(model, to: path, original: file)
            case .safetensors(let file): try SafetensorsFormat.write(model, to: path, original: file)
            case .npz(let file): try NPZFormat.write(model, to: path, original: file)
            case .npy(let file):
                try NPYFormat.write(try CheckpointWriter.singleArray(of: model), to: path, original: file)
            }
        }
    }

    /// This checkpoint with the initializers named in `replacements` swapped in (dtype and shape
    /// must be unchanged; the tensors are converted to the stored dtype otherwise).
    public func replacingInitializers(_ replacements: [String: Tensor]) -> Model {
        var model = self.model
        for index in model.graph.initializers.indices {
            let name = model.graph.initializers[index].name
            if let tensor = replacements[name] { model.graph.initializers[index].tensor = tensor }
        }
        return model
    }
}

/// Writes a model into a format with no original file to preserve (conversion).
public enum CheckpointWriter {
    /// Writes `model` as `format` at `path`. Weights-only formats receive the initializers and
    /// metadata; ONNX needs a graph (see `GraphTemplate`).
    public static func write(_ model: Model, as format: CheckpointFormat, to path: String) throws {
        try FileError.wrapping(path) {
            switch format {
            case .onnx:
                guard !model.graph.nodes.isEmpty else {
                    throw UsageError("an ONNX file needs a graph: pass \(Setting.graph) TEMPLATE.onnx")
                }
                try ONNXFormat.write(model, to: path, original: nil)
            case .safetensors:
                try SafetensorsFormat.write(model, to: path, original: nil)
            case .npz:
                try NumPyDTypes.check(model.graph.initializers)
                try NPZFormat.write(model, to: path, original: nil)
            case .npy:
                let tensor = try singleArray(of: model)
                try NumPyDTypes.check(model.graph.initializers)
                try NPYFormat.write(tensor, to: path)
            }
        }
    }

    /// The one tensor of a model written as `.npy`, which holds a single unnamed array.
    static func singleArray(of model: Model) throws -> Tensor {
        let initializers = model.graph.initializers
        guard initializers.count == 1 else {
            throw UsageError(
                "an .npy file holds one array, the model has \(initializers.count) tensors (write .npz instead)")
        }
        return initializers[0].tensor
    }
}
