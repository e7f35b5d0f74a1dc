#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import LetheCore
import LetheIR

extension SafetensorsFormat {
    /// Writes `model`'s initializers (and metadata) to `path`, atomically.
    ///
    /// With `original`, and the same tensor names, order, dtypes, shapes and metadata, the file
    /// is the original's header followed by each tensor's bytes: byte-identical when nothing
    /// changed, and only the changed tensors' ranges differ otherwise. Any other model is written
    /// fresh as the reference library does (tensors sorted by descending dtype, then name; compact
    /// JSON padded with spaces to a multiple of 8). Tensors stream one by one from their storage
    /// (mapped pages are released once written), so memory stays near the largest tensor.
    public static func write(_ model: Model, to path: String, original: SafetensorsFile? = nil) throws {
        let initializers = model.graph.initializers
        try validateForWriting(model)
        if let original, let plan = patchPlan(model, original: original) {
            try AtomicFileWriter.write(to: path) { writer in
                try TensorStreamer.write(
                    UnsafeRawBufferPointer(rebasing: original.source.bytes[0..<original.dataStart]),
                    to: writer)
                for (index, initializer) in initializers.enumerated() {
                    let entry = original.entries[index]
                    if plan[index] {
                        let range = (original.dataStart + entry.begin)..<(original.dataStart + entry.end)
                        try TensorStreamer.write(
                            UnsafeRawBufferPointer(rebasing: original.source.bytes[range]),
                            to: writer, release: original.source.mappedFile != nil)
                    } else {
                        try TensorStreamer.write(initializer.tensor, to: writer)
                    }
                }
            }
            return
        }
        let order = initializers.indices.sorted { a, b in
            let rankA = SafetensorsDTypeTable.rank[name(of: initializers[a].tensor.dtype)!]!
            let rankB = SafetensorsDTypeTable.rank[name(of: initializers[b].tensor.dtype)!]!
            if rankA != rankB { return rankA > rankB }
            return initializers[a].name.utf8.lexicographicallyPrecedes(initializers[b].name.utf8)
        }
        let header = freshHeader(model, order: order)
        try AtomicFileWriter.write(to: path) { writer in
            try writer.write(header)
            for index in order { try TensorStreamer.write(initializers[index].tensor, to: writer) }
        }
    }

    private static func validateForWriting(_ model: Model) throws {
        var seen = Set<String>()
        for initializer in model.graph.initializers {
            guard name(of: initializer.tensor.dtype) != nil else {
                let tensor = initializer.tensor
                let kind =
                    tensor.characterArray.map { "a NumPy string array (\($0.typeName(tensor.dtype)))" }
                    ?? tensor.dtype.shortName
                throw SafetensorsError.cannotWrite(
                    "tensor \"\(initializer.name)\" is \(kind), which safetensors has no dtype for")
            }
            guard initializer.name != "__metadata__" else {
                throw SafetensorsError.cannotWrite("a tensor may not be called \"__metadata__\"")
            }
            guard seen.insert(initializer.name).inserted else {
                throw SafetensorsError.cannotWrite("two tensors are called \"\(initializer.name)\"")
            }
        }
        var keys = Set<String>()
        for (key, _) in model.metadata where !keys.insert(key).inserted {
            throw SafetensorsError.cannotWrite("two metadata entries are called \"\(key)\"")
        }
    }

    /// For a model laid out exactly as `original`, which tensors still hold the original bytes
    /// (true) and which must be written anew; nil when the layout changed.
    private static func patchPlan(_ model: Model, original: SafetensorsFile) -> [Bool]? {
        let initializers = model.graph.initializers
        guard initializers.count == original.entries.count,
            model.metadata.count == original.metadata.count,
            zip(model.metadata, original.metadata).allSatisfy({ $0.key == $1.key && $0.value == $1.value })
        else { return nil }
        var unchanged: [Bool] = []
        unchanged.reserveCapacity(initializers.count)
        for (initializer, entry) in zip(initializers, original.entries) {
            let tensor = initializer.tensor
            guard initializer.name == entry.name, name(of: tensor.dtype) == entry.dtypeName,
                tensor.shape == entry.shape
            else { return nil }
            unchanged.append(tensor.storage === entry.tensor.storage || tensor.isBitwiseEqual(to: entry.tensor))
        }
        return unchanged
    }

    private static func freshHeader(_ model: Model, order: [Int]) -> [UInt8] {
        var json: [UInt8] = [UInt8(ascii: "{")]
        var first = true
        func separator() {
            if !first { json.append(UInt8(ascii: ",")) }
            first = false
        }
        if !model.metadata.isEmpty {
            separator()
            HeaderJSONWriter.appendString("__metadata__", to: &json)
            json.append(contentsOf: Array(":{".utf8))
            for (index, (key, value)) in model.metadata.enumerated() {
                if index > 0 { json.append(UInt8(ascii: ",")) }
                HeaderJSONWriter.appendString(key, to: &json)
                json.append(UInt8(ascii: ":"))
                HeaderJSONWriter.appendString(value, to: &json)
            }
            json.append(UInt8(ascii: "}"))
        }
        var offset = 0
        for index in order {
            let initializer = model.graph.initializers[index]
            let tensor = initializer.tensor
            separator()
            HeaderJSONWriter.appendString(initializer.name, to: &json)
            json.append(contentsOf: Array(":{\"dtype\":".utf8))
            HeaderJSONWriter.appendString(name(of: tensor.dtype)!, to: &json)
            json.append(contentsOf: Array(",\"shape\":[".utf8))
            for (i, dim) in tensor.shape.enumerated() {
                if i > 0 { json.append(UInt8(ascii: ",")) }
                HeaderJSONWriter.appendInt(dim, to: &json)
            }
            json.append(contentsOf: Array("],\"data_offsets\":[".utf8))
            HeaderJSONWriter.appendInt(offset, to: &json)
            json.append(UInt8(ascii: ","))
            offset += tensor.byteCount
            HeaderJSONWriter.appendInt(offset, to: &json)
            json.append(contentsOf: Array("]}".utf8))
        }
        json.append(UInt8(ascii: "}"))
        json.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - json.count % 8) % 8))
        var header = withUnsafeBytes(of: UInt64(json.count).littleEndian) { Array($0) }
        header.append(contentsOf: json)
        return header
    }
}
