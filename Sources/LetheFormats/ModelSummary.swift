import LetheCore
import LetheIR
import Foundation

/// What `lethe inspect` shows about a checkpoint, in a form that encodes as JSON.
public struct ModelSummary: Codable, Sendable {
    public struct Value: Codable, Sendable {
        public var name: String
        public var dtype: String?
        /// Dimensions as text: numbers, symbolic names, or "?".
        public var shape: [String]?
    }
    public struct TensorEntry: Codable, Sendable {
        public var name: String
        /// The dtype's name (`float32`); NumPy's for string arrays (`S5`, `U3`).
        public var dtype: String
        /// The shape; NumPy's for string arrays (without the character axis).
        public var shape: [Int]
        public var bytes: Int
    }
    public struct OpCount: Codable, Sendable {
        public var op: String
        public var count: Int
    }
    public struct Opset: Codable, Sendable {
        public var domain: String
        public var version: Int
    }

    public var path: String
    public var format: String
    public var producer: String
    public var irVersion: Int?
    public var opsets: [Opset]
    public var inputs: [Value]
    public var outputs: [Value]
    public var ops: [OpCount]
    public var tensors: [TensorEntry]
    public var parameters: Int
    public var tensorBytes: Int
    public var metadata: [String: String]
    public var metadataOrder: [String]

    public init(_ checkpoint: Checkpoint) {
        let model = checkpoint.model
        let graph = model.graph
        path = checkpoint.path
        format = checkpoint.format.rawValue
        producer = [model.producerName, model.producerVersion].filter { !$0.isEmpty }.joined(separator: " ")
        irVersion = checkpoint.format == .onnx ? model.irVersion : nil
        opsets = model.opsets.map { Opset(domain: $0.domain.isEmpty ? "ai.onnx" : $0.domain, version: $0.version) }
        func describe(_ info: ValueInfo) -> Value {
            Value(name: info.name, dtype: info.dtype?.rawValue, shape: info.shape?.map(\.description))
        }
        inputs = graph.runtimeInputs.map(describe)
        outputs = graph.outputs.map(describe)
        var counts: [String: Int] = [:]
        var order: [String] = []
        for node in graph.nodes {
            let op = node.domain.isEmpty || node.domain == "ai.onnx" ? node.opType : "\(node.domain).\(node.opType)"
            if counts[op] == nil { order.append(op) }
            counts[op, default: 0] += 1
        }
        ops = order.map { OpCount(op: $0, count: counts[$0]!) }.sorted {
            $0.count > $1.count || ($0.count == $1.count && $0.op < $1.op)
        }
        tensors = graph.initializers.map {
            if let text = $0.tensor.characterArray {
                return TensorEntry(
                    name: $0.name, dtype: text.typeName($0.tensor.dtype), shape: text.shape,
                    bytes: $0.tensor.byteCount)
            }
            return TensorEntry(
                name: $0.name, dtype: $0.tensor.dtype.rawValue, shape: $0.tensor.shape,
                bytes: $0.tensor.byteCount)
        }
        parameters = graph.parameterCount
        tensorBytes = tensors.reduce(0) { $0 + $1.bytes }
        metadata = Dictionary(model.metadata.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        metadataOrder = model.metadata.map(\.key)
    }

    /// The human-readable form `lethe inspect` prints.
    public func render() -> String {
        var lines: [String] = []
        func row(_ label: String, _ value: String) {
            lines.append(label.padding(toLength: 10, withPad: " ", startingAt: 0) + value)
        }
        row("file", path)
        row("format", format + (irVersion.map { " (IR version \($0))" } ?? ""))
        if !producer.isEmpty { row("producer", producer) }
        if !opsets.isEmpty { row("opsets", opsets.map { "\($0.domain) \($0.version)" }.joined(separator: ", ")) }
        func value(_ v: Value) -> String {
            "\(v.name): \(v.dtype.map { DType(rawValue: $0)?.shortName ?? $0 } ?? "?") [\(v.shape?.joined(separator: ", ") ?? "?")]"
        }
        for (i, input) in inputs.enumerated() { row(i == 0 ? "inputs" : "", value(input)) }
        for (i, output) in outputs.enumerated() { row(i == 0 ? "outputs" : "", value(output)) }
        if !ops.isEmpty {
            row(
                "ops",
                "\(ops.reduce(0) { $0 + $1.count }) nodes: "
                    + ops.map { "\($0.op) ×\($0.count)" }.joined(separator: ", "))
        }
        row("tensors", "\(tensors.count), \(formatCount(parameters)) parameters, \(formatBytes(tensorBytes))")
        let nameWidth = min(48, tensors.map(\.name.count).max() ?? 0)
        for tensor in tensors {
            let dtype = DType(rawValue: tensor.dtype)?.shortName ?? tensor.dtype
            lines.append(
                "  " + tensor.name.padding(toLength: max(nameWidth, tensor.name.count), withPad: " ", startingAt: 0)
                    + "  " + dtype.padding(toLength: 5, withPad: " ", startingAt: 0)
                    + "  [" + tensor.shape.map(String.init).joined(separator: ", ") + "]  " + formatBytes(tensor.bytes))
        }
        if !metadataOrder.isEmpty {
            row("metadata", "")
            for key in metadataOrder { lines.append("  \(key) = \(metadata[key] ?? "")") }
        }
        return lines.joined(separator: "\n")
    }
}

func formatCount(_ n: Int) -> String {
    var digits = Array(String(n))
    var out: [Character] = []
    while digits.count > 3 {
        out = [","] + digits.suffix(3) + out
        digits.removeLast(3)
    }
    return String(digits + out)
}

func formatBytes(_ n: Int) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"]
    var value = Double(n)
    var unit = 0
    while value >= 1000 && unit < units.count - 1 {
        value /= 1000
        unit += 1
    }
    return unit == 0 ? "\(n) B" : String(format: "%.1f %@", value, units[unit])
}
