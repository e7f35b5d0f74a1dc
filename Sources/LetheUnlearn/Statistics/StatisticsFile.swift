import LetheCore
import LetheIR
import LetheSafetensors

extension StatisticsSet {
    /// Writes the statistics as a safetensors file (F64 Grams, row counts in the metadata).
    public func save(to path: String) throws {
        let contents = fileContents()
        let model = Model(
            graph: Graph(initializers: contents.tensors.map { Initializer(name: $0.name, tensor: $0.tensor) }),
            metadata: contents.metadata)
        try SafetensorsFormat.write(model, to: path)
    }

    /// Reads a statistics file written by `save(to:)`.
    public static func load(from path: String) throws -> StatisticsSet {
        let model = try SafetensorsFormat.read(path: path).model
        return try FileError.wrapping(path) {
            try StatisticsSet(tensors: model.graph.initializers.map { ($0.name, $0.tensor) }, metadata: model.metadata)
        }
    }

    /// Reads several statistics files and adds them up (shards of the same model and samples' layers).
    public static func load(adding paths: [String]) throws -> StatisticsSet {
        var total = StatisticsSet()
        for path in paths { try FileError.wrapping(path) { try total.merge(try load(from: path)) } }
        return total
    }
}
