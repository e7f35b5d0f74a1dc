import Foundation
import LetheCore
import LetheIR

/// How `ONNXFormat.write` places tensor data.
public struct ONNXWriteOptions: Sendable {
    /// Initializers of at least this many bytes are written as external data (`<model>.data`
    /// beside the model), smaller ones inline. nil keeps every tensor where the original had it
    /// (new tensors inline). Models whose serialized size would exceed protobuf's 2 GB limit are
    /// always written with external data.
    public var externalDataThreshold: Int?

    public init(externalDataThreshold: Int? = nil) {
        self.externalDataThreshold = externalDataThreshold
    }
}

extension ONNXFormat {
    /// Writes `model` as ONNX. With `original`, everything Lethe did not change is preserved.
    ///
    /// When the graph's structure, names and tensor layouts are those of `original`, the file is
    /// the original's bytes with only changed tensor data overwritten, so an unchanged model is
    /// written byte for byte. Otherwise the original message is rebuilt around the IR's changes,
    /// keeping every field the IR does not cover. Writes are atomic: external data files first,
    /// the model last; `original`'s files are never modified in place.
    public static func write(
        _ model: Model, to path: String, original: ONNXFile?,
        options: ONNXWriteOptions = .init()
    ) throws {
        try FileError.wrapping(path) {
            // NumPy's fixed-width strings have no raw-data form in ONNX (its strings are length-prefixed).
            if let text = model.graph.initializers.first(where: { $0.tensor.dtype.isCharacter }) {
                let kind =
                    text.tensor.characterArray.map { $0.typeName(text.tensor.dtype) } ?? text.tensor.dtype.shortName
                throw ONNXError.cannotWrite(
                    "tensor \"\(text.name)\" is a NumPy string array (\(kind)); ONNX weights are numbers")
            }
            if let original,
                let plan = try PatchPlan.make(model, original: original, outputPath: path, options: options)
            {
                try plan.execute()
                return
            }
            let overwrites = original.map { sameFile(path, $0.path) } ?? false
            try ProtoRebuild.write(
                model, to: path, original: original?.source, overwritesOriginal: overwrites,
                options: options)
        }
    }

    /// The real path of `path`, or nil when it does not exist.
    static func existingRealPath(_ path: String) -> String? { FilePaths.existing(path) }

    static func sameFile(_ a: String, _ b: String) -> Bool {
        guard let x = existingRealPath(a), let y = existingRealPath(b) else { return false }
        return x == y
    }

    static func fileName(of path: String) -> String {
        path.lastIndex(of: "/").map { String(path[path.index(after: $0)...]) } ?? path
    }

    /// Commits data files first and the model last; removes new data files if the model fails.
    static func commit(data: [AtomicFileWriter], model: AtomicFileWriter) throws {
        var created: [String] = []
        do {
            for writer in data {
                let existed = existingRealPath(writer.destination) != nil
                try writer.commit()
                if !existed { created.append(writer.destination) }
            }
            try model.commit()
        } catch {
            for writer in data { writer.abort() }
            model.abort()
            for path in created { unlink(path) }
            throw error
        }
    }
}

/// A write that copies the original bytes and overwrites only the data of changed tensors.
struct PatchPlan {
    enum Bytes {
        case tensor(Tensor)
        case encoded([UInt8])
    }

    struct Patch {
        let offset: Int
        let bytes: Bytes
    }

    /// An external data file copied beside the output with its patches.
    struct DataCopy {
        let source: MappedFile
        let destination: String
        var patches: [Patch]
    }

    let source: ONNXSource
    let outputPath: String
    var modelPatches: [Patch] = []
    var dataCopies: [DataCopy] = []

    /// The plan, or nil when the change cannot be made in place.
    static func make(
        _ model: Model, original: ONNXFile, outputPath: String,
        options: ONNXWriteOptions
    ) throws -> PatchPlan? {
        let source = original.source
        guard StructuralEquality.equal(model, source.model) else { return nil }
        var plan = PatchPlan(source: source, outputPath: outputPath)
        var externalPatches: [String: [Patch]] = [:]
        var feasible = true
        try source.visitTensors(of: model.graph, path: .mainGraph) { path, tensor in
            guard feasible, let record = source.records[path] else { feasible = false; return }
            if let threshold = options.externalDataThreshold, path.isInitializer {
                let external: Bool
                if case .external = record.placement { external = true } else { external = false }
                if external != (tensor.byteCount >= threshold) { feasible = false; return }
            }
            if StructuralEquality.unchanged(tensor, record.tensor) { return }
            switch record.placement {
            case .raw(let range):
                plan.modelPatches.append(Patch(offset: range.lowerBound, bytes: .tensor(tensor)))
            case .external(let slice):
                externalPatches[slice.file.path, default: []].append(
                    Patch(
                        offset: slice.range.lowerBound,
                        bytes: .tensor(tensor)))
            case .typed(let payload):
                guard let payload, let encoded = TypedData.packedPayload(tensor, field: payload.field),
                    encoded.count == payload.range.count
                else { feasible = false; return }
                plan.modelPatches.append(Patch(offset: payload.range.lowerBound, bytes: .encoded(encoded)))
            }
        }
        guard feasible else { return nil }

        // Every location the model names external data with (two spellings of one file get a
        // copy each, so the output resolves both).
        var locations: [String: ExternalSlice] = [:]
        for record in source.records.values {
            if case .external(let slice) = record.placement { locations[slice.location] = slice }
        }
        for slice in source.carriedExternal.values { locations[slice.location] = slice }
        let outputFolder = ONNXFormat.folder(of: outputPath)
        let overwritesOriginal = ONNXFormat.sameFile(outputPath, original.path)
        for (_, slice) in locations.sorted(by: { $0.key < $1.key }) {
            let filePath = slice.file.path
            let destination = outputFolder + "/" + slice.location
            let patches = externalPatches[filePath] ?? []
            if ONNXFormat.sameFile(destination, filePath) {
                // The output would share the input's data file: only an in-place overwrite may.
                guard overwritesOriginal else { return nil }
                if patches.isEmpty { continue }
            }
            plan.dataCopies.append(DataCopy(source: slice.file, destination: destination, patches: patches))
        }
        return plan
    }

    func execute() throws {
        var dataWriters: [AtomicFileWriter] = []
        for copy in dataCopies {
            let folder = ONNXFormat.folder(of: copy.destination)
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let writer = try AtomicFileWriter(destination: copy.destination)
            try writer.write(copy.source.bytes)
            try apply(copy.patches, to: writer)
            dataWriters.append(writer)
        }
        let model = try AtomicFileWriter(destination: outputPath)
        try model.write(source.bytes.bytes)
        try apply(modelPatches, to: model)
        try ONNXFormat.commit(data: dataWriters, model: model)
    }

    private func apply(_ patches: [Patch], to writer: AtomicFileWriter) throws {
        for patch in patches {
            switch patch.bytes {
            case .tensor(let tensor): try tensor.withUnsafeBytes { try writer.write($0, at: patch.offset) }
            case .encoded(let bytes): try bytes.withUnsafeBytes { try writer.write($0, at: patch.offset) }
            }
        }
    }
}

extension ProtoPath {
    /// Whether the path ends at a graph initializer (GraphProto field 5) rather than an attribute tensor.
    var isInitializer: Bool {
        // Initializers sit directly under a graph step (ModelProto.graph 7, AttributeProto.g 6 or
        // graphs 11); attribute tensors under an attribute step (NodeProto.attribute 5).
        let s = steps
        guard s.count >= 4 else { return false }
        let graphSteps = [ONNXField.Model.graph, ONNXField.Attribute.graph, ONNXField.Attribute.graphs].map(Int32.init)
        return s[s.count - 2] == Int32(ONNXField.Graph.initializer) && graphSteps.contains(s[s.count - 4])
    }
}
