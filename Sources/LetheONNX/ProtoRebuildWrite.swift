import Foundation
import LetheCore
import LetheIR

extension ProtoRebuild {
    /// Builds the model message, then writes the data file (when any tensor goes there) and the
    /// model atomically, data first. Models whose inline data would pass protobuf's limit
    /// (`inlineLimit`) move every initializer of 1 KB or more to the data file.
    static func write(
        _ model: Model, to path: String, original: ONNXSource?, overwritesOriginal: Bool,
        options: ONNXWriteOptions, inlineLimit: Int = protobufLimit
    ) throws {
        var threshold = options.externalDataThreshold
        if inlineBytes(model.graph, original: original, threshold: threshold) > inlineLimit {
            threshold = min(threshold ?? 1024, 1024)
        }
        var builder = ProtoRebuild(
            source: original, threshold: threshold,
            dataLocation: dataFileName(
                for: path, original: original,
                overwritesOriginal: overwritesOriginal))
        let proto = try builder.buildModel(model)
        let bytes: [UInt8]
        do {
            bytes = try proto.serializedBytes()
        } catch {
            throw ONNXError.cannotWrite("serializing the model failed: \(error)")
        }
        guard bytes.count <= Int(Int32.max) else {
            throw ONNXError.cannotWrite("the model is \(bytes.count) bytes even with its weights as external data")
        }
        var dataWriters: [AtomicFileWriter] = []
        if !builder.sink.entries.isEmpty {
            let writer = try AtomicFileWriter(destination: ONNXFormat.folder(of: path) + "/" + builder.dataLocation)
            try builder.sink.write(to: writer)
            dataWriters.append(writer)
        }
        let modelWriter = try AtomicFileWriter(destination: path)
        try modelWriter.write(bytes)
        try ONNXFormat.commit(data: dataWriters, model: modelWriter)
        withExtendedLifetime(builder) {}
    }
}
