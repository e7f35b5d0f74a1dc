import LetheCore
import LetheIR
import Foundation

/// Tensor-by-tensor and graph differences between two models, as `lethe diff` reports them.
public struct CheckpointDiff: Codable, Sendable {
    public struct ChangedTensor: Codable, Sendable {
        public var name: String
        /// Set when dtype or shape differ (then no value statistics are given).
        public var typeChange: String?
        public var maxAbsoluteDifference: Double?
        public var maxRelativeDifference: Double?
        /// Share of elements whose value (or bytes) differ.
        public var fractionChanged: Double?
    }

    /// How far values may differ and still count as equal, as NumPy's `allclose` has it:
    /// `|a − b| ≤ absolute + relative · |b|` for every element. Zero by default (bit for bit).
    public struct Tolerance: Codable, Sendable {
        public var relative: Double
        public var absolute: Double
        public init(relative: Double = 0, absolute: Double = 0) {
            self.relative = relative
            self.absolute = absolute
        }
        /// Bit for bit: any changed element is a change.
        public static let exact = Tolerance()
        var isExact: Bool { relative == 0 && absolute == 0 }
    }

    public var onlyInFirst: [String] = []
    public var onlyInSecond: [String] = []
    public var changed: [ChangedTensor] = []
    public var unchangedCount = 0
    /// Tensors whose values differ, but all within the tolerance (counted as equal).
    public var closeCount = 0
    /// The tolerance the comparison used.
    public var tolerance: Tolerance
    /// Node, attribute, input/output and metadata differences, one line each.
    public var graphDifferences: [String] = []

    public var isEqual: Bool {
        onlyInFirst.isEmpty && onlyInSecond.isEmpty && changed.isEmpty && graphDifferences.isEmpty
    }

    /// Compares `first` with `second`. Graphs are compared only when both have nodes, so that a
    /// weights file and its ONNX model can be compared by weights alone.
    public init(_ first: Model, _ second: Model, tolerance: Tolerance = .exact) {
        self.tolerance = tolerance
        let a = Dictionary(first.graph.initializers.map { ($0.name, $0.tensor) }, uniquingKeysWith: { x, _ in x })
        let b = Dictionary(second.graph.initializers.map { ($0.name, $0.tensor) }, uniquingKeysWith: { x, _ in x })
        onlyInFirst = first.graph.initializers.map(\.name).filter { b[$0] == nil }
        onlyInSecond = second.graph.initializers.map(\.name).filter { a[$0] == nil }
        for initializer in first.graph.initializers {
            guard let other = b[initializer.name] else { continue }
            if let (change, isClose) = CheckpointDiff.compare(initializer.name, initializer.tensor, other, tolerance) {
                if isClose {
                    closeCount += 1
                } else {
                    changed.append(change)
                }
            } else {
                unchangedCount += 1
            }
        }
        if !first.graph.nodes.isEmpty && !second.graph.nodes.isEmpty {
            graphDifferences = CheckpointDiff.compareGraphs(first, second)
        }
    }

    /// nil when `a` and `b` are bitwise equal; otherwise the change, and whether every value stays
    /// inside a non-exact `tolerance` (type and non-numeric byte changes never do).
    static func compare(
        _ name: String, _ a: Tensor, _ b: Tensor, _ tolerance: Tolerance
    ) -> (ChangedTensor, isClose: Bool)? {
        if a.dtype != b.dtype || a.shape != b.shape {
            return (
                ChangedTensor(
                    name: name, typeChange: "\(a.dtype.shortName) \(a.shape) → \(b.dtype.shortName) \(b.shape)"), false
            )
        }
        if a.isBitwiseEqual(to: b) { return nil }
        guard a.dtype.isNumeric, a.dtype != .bool else {
            return (ChangedTensor(name: name, fractionChanged: byteFractionChanged(a, b)), false)
        }
        let x = a.doubleValues(), y = b.doubleValues()
        var maxAbs = 0.0, maxRel = 0.0, changedCount = 0
        var isClose = !tolerance.isExact
        for i in 0..<x.count where x[i] != y[i] && !(x[i].isNaN && y[i].isNaN) {
            changedCount += 1
            let diff = abs(x[i] - y[i])
            maxAbs = max(maxAbs, diff.isNaN ? .infinity : diff)
            let scale = max(abs(x[i]), abs(y[i]))
            if scale > 0 { maxRel = max(maxRel, diff / scale) }
            if !(diff <= tolerance.absolute + tolerance.relative * abs(y[i])) { isClose = false }
        }
        if changedCount == 0 {
            // Same values, different bytes (signed zeros, NaN payloads): still a change.
            return (
                ChangedTensor(
                    name: name, maxAbsoluteDifference: 0, maxRelativeDifference: 0,
                    fractionChanged: byteFractionChanged(a, b)), isClose
            )
        }
        return (
            ChangedTensor(
                name: name, maxAbsoluteDifference: maxAbs, maxRelativeDifference: maxRel,
                fractionChanged: Double(changedCount) / Double(max(1, x.count))), isClose
        )
    }

    static func byteFractionChanged(_ a: Tensor, _ b: Tensor) -> Double {
        let width = max(1, a.dtype.byteSize)
        return a.withUnsafeBytes { x in
            b.withUnsafeBytes { y in
                var differing = 0
                var i = 0
                while i < x.count {
                    if memcmp(x.baseAddress! + i, y.baseAddress! + i, width) != 0 { differing += 1 }
                    i += width
                }
                return Double(differing) / Double(max(1, x.count / width))
            }
        }
    }

    static func compareGraphs(_ first: Model, _ second: Model) -> [String] {
        var lines: [String] = []
        let a = first.graph, b = second.graph
        if a.nodes.count != b.nodes.count { lines.append("node count \(a.nodes.count) → \(b.nodes.count)") }
        for i in 0..<min(a.nodes.count, b.nodes.count) {
            let x = a.nodes[i], y = b.nodes[i]
            let label = "node \(i) '\(x.name.isEmpty ? x.opType : x.name)'"
            if x.opType != y.opType || x.domain != y.domain { lines.append("\(label): op \(x.opType) → \(y.opType)") }
            if x.inputs != y.inputs { lines.append("\(label): inputs \(x.inputs) → \(y.inputs)") }
            if x.outputs != y.outputs { lines.append("\(label): outputs \(x.outputs) → \(y.outputs)") }
            let xa = x.attributes.map { "\($0.name)=\(describe($0.value))" }
            let ya = y.attributes.map { "\($0.name)=\(describe($0.value))" }
            if xa != ya {
                lines.append("\(label): attributes \(xa.joined(separator: " ")) → \(ya.joined(separator: " "))")
            }
        }
        if a.inputs.map(\.name) != b.inputs.map(\.name) {
            lines.append("graph inputs \(a.inputs.map(\.name)) → \(b.inputs.map(\.name))")
        }
        if a.outputs.map(\.name) != b.outputs.map(\.name) {
            lines.append("graph outputs \(a.outputs.map(\.name)) → \(b.outputs.map(\.name))")
        }
        let am = first.metadata.map { "\($0.key)=\($0.value)" }, bm = second.metadata.map { "\($0.key)=\($0.value)" }
        if am != bm { lines.append("metadata \(am) → \(bm)") }
        let ao = first.opsets.map { "\($0.domain):\($0.version)" },
            bo = second.opsets.map { "\($0.domain):\($0.version)" }
        if ao != bo { lines.append("opsets \(ao) → \(bo)") }
        return lines
    }

    static func describe(_ attribute: Attribute) -> String {
        switch attribute {
        case .float(let v): return "\(v)"
        case .int(let v): return "\(v)"
        case .string(let v): return String(decoding: v, as: UTF8.self)
        case .floats(let v): return "\(v)"
        case .ints(let v): return "\(v)"
        case .strings(let v): return "\(v.map { String(decoding: $0, as: UTF8.self) })"
        case .tensor(let t): return "tensor(\(t.dtype.shortName) \(t.shape) \(checksum(t)))"
        case .tensors(let ts): return "tensors(\(ts.map { checksum($0) }))"
        case .graph(let g): return "graph(\(g.nodes.count) nodes)"
        case .graphs(let gs): return "graphs(\(gs.map(\.nodes.count)))"
        case .opaque(let kind): return kind
        }
    }

    /// FNV-1a over the bytes: enough to notice a changed Constant tensor.
    static func checksum(_ tensor: Tensor) -> String {
        tensor.withUnsafeBytes { bytes in
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
            return String(hash, radix: 16)
        }
    }

    /// The human-readable form `lethe diff` prints.
    public func render(firstName: String, secondName: String) -> String {
        let close = closeCount > 0 ? ", \(closeCount) within tolerance" : ""
        if isEqual { return "same: \(unchangedCount) tensors identical\(close)" }
        var lines: [String] = []
        for name in onlyInFirst { lines.append("only in \(firstName): \(name)") }
        for name in onlyInSecond { lines.append("only in \(secondName): \(name)") }
        for change in changed {
            if let type = change.typeChange {
                lines.append("changed \(change.name): \(type)")
            } else if let abs = change.maxAbsoluteDifference, let rel = change.maxRelativeDifference {
                lines.append(
                    String(
                        format: "changed %@: max abs %.3g, max rel %.3g, %.1f%% of elements",
                        change.name, abs, rel, 100 * (change.fractionChanged ?? 0)))
            } else {
                lines.append(
                    String(
                        format: "changed %@: %.1f%% of elements (bytes)", change.name,
                        100 * (change.fractionChanged ?? 0)))
            }
        }
        lines.append(contentsOf: graphDifferences.map { "graph: \($0)" })
        lines.append(
            "\(changed.count) changed, \(onlyInFirst.count + onlyInSecond.count) unmatched, \(unchangedCount) identical tensors\(close)"
        )
        return lines.joined(separator: "\n")
    }
}
