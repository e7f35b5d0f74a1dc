import LetheCore
import LetheIR

/// A checkpoint together with a graph that can run it: its own for ONNX, or an ONNX template
/// paired by name for weights-only files. Patched weights go back into the checkpoint's own file
/// format, touching nothing else.
public struct RunnableCheckpoint: Sendable {
    public let checkpoint: Checkpoint
    /// The model to run: graph plus this checkpoint's weights.
    public let model: Model
    /// Set for weights-only checkpoints.
    public let template: GraphTemplate?

    /// Opens `path`; weights-only files need `graph` (an ONNX file of the same model).
    public static func open(
        _ path: String, graph: String? = nil, limits: Limits = .default
    ) throws -> RunnableCheckpoint {
        let checkpoint = try Checkpoint.open(path, limits: limits)
        if checkpoint.format.hasGraph {
            return RunnableCheckpoint(checkpoint: checkpoint, model: checkpoint.model, template: nil)
        }
        guard let graph else {
            throw FileError(
                path: path,
                underlying: UsageError(
                    "\(checkpoint.format.rawValue) holds weights only: pass \(Setting.graph) MODEL.onnx with the model's graph"
                ))
        }
        let templateFile = try Checkpoint.open(graph, limits: limits)
        guard templateFile.format == .onnx else {
            throw FileError(path: graph, underlying: UsageError("\(Setting.graph) must be an ONNX file"))
        }
        let template = GraphTemplate(model: templateFile.model)
        // A NumPy string member the graph does not name (a version, a note) cannot be a weight: it is
        // left out of the pairing and carried unchanged into patched files. One the graph names is
        // still refused as a dtype mismatch.
        let weights = checkpoint.model.graph.initializers.filter {
            !$0.tensor.dtype.isCharacter || template.aliases[$0.name] != nil
        }
        let model = try FileError.wrapping(path) {
            try template.filled(with: weights, convertDTypes: true)
        }
        return RunnableCheckpoint(checkpoint: checkpoint, model: model, template: template)
    }

    /// Refuses an output name whose extension names no checkpoint format.
    public static func checkPatchedOutputName(_ path: String) throws {
        guard CheckpointFormat.fromExtension(path) != nil else {
            throw UsageError("cannot tell the format of '\(path)': use .onnx, .safetensors or .npz")
        }
    }

    /// Refuses an output that would not keep this checkpoint's format: patched weights are written
    /// back into the file's own format, nothing else changed.
    public func checkPatchedOutput(_ path: String) throws {
        try Self.checkPatchedOutputName(path)
        if CheckpointFormat.fromExtension(path) != checkpoint.format {
            throw UsageError("the output keeps the model's format: name it .\(checkpoint.format.rawValue)")
        }
    }

    /// Writes the checkpoint to `path` in its own format with `patched` (keyed by the runnable
    /// model's initializer names) in place of the originals, each kept in its stored dtype.
    public func writePatched(_ patched: [String: Tensor], to path: String) throws {
        var byStoredName: [String: Tensor] = [:]
        for (name, tensor) in patched {
            let storedNames = template?.weightNames(forInitializer: name) ?? [name]
            for stored in storedNames { byStoredName[stored] = tensor }
        }
        var model = checkpoint.model
        for index in model.graph.initializers.indices {
            let name = model.graph.initializers[index].name
            guard let tensor = byStoredName[name] else { continue }
            let stored = model.graph.initializers[index].tensor
            model.graph.initializers[index].tensor =
                tensor.dtype == stored.dtype ? tensor : tensor.convertedFloatingPoint(to: stored.dtype)
        }
        try checkpoint.write(model, to: path)
    }
}
