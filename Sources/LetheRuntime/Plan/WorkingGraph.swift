import LetheCore
import LetheIR

/// The runtime's own view of a model while it is being planned: nodes that rewrites may change,
/// and constants by value name. The user's `Model` is never modified; weights are shared, not copied.
struct WorkingGraph {
    struct Entry {
        var node: Node
        var activation: Activation? = nil
        var fusedBias: Tensor? = nil
        var elementwise: ElementwiseProgram? = nil
        /// A MatMul whose constant input 1 is its weight stored `N × K`, the transpose of the
        /// operand it multiplies by (see `fuseWeightTransposes`).
        var weightTransposed = false
    }

    var entries: [Entry]
    var constants: [String: Tensor]
    /// Constants shared with the session's other plans.
    let derived: DerivedConstants
    let inputs: [ValueInfo]
    let outputs: [String]
    let opset: Int
    /// Values a caller asked to see (taps); rewrites must keep them.
    let required: Set<String>

    /// `derived` holds what other plans of the same session already derived (see `DerivedConstants`).
    init(model: Model, required: Set<String>, derived: DerivedConstants = DerivedConstants()) {
        let graph = model.graph
        var constants: [String: Tensor] = [:]
        for initializer in graph.initializers {
            let t = initializer.tensor
            // Half-precision weights compute in float32.
            let halfPrecision = t.dtype == .float16 || t.dtype == .bfloat16
            constants[initializer.name] = halfPrecision ? derived.value(initializer.name) { t.asFloat32() } : t
        }
        self.constants = constants
        self.derived = derived
        entries = graph.nodes.map { Entry(node: $0) }
        inputs = graph.runtimeInputs
        outputs = graph.outputs.map(\.name)
        opset = model.onnxOpset ?? 21
        self.required = required
    }

    /// How many nodes read each value, plus one for each graph output and required value.
    func useCounts() -> [String: Int] {
        var counts: [String: Int] = [:]
        for entry in entries { for input in entry.node.inputs where !input.isEmpty { counts[input, default: 0] += 1 } }
        for output in outputs { counts[output, default: 0] += 1 }
        for value in required { counts[value, default: 0] += 1 }
        return counts
    }

    /// The entry that produces each value.
    func producers() -> [String: Int] {
        var producer: [String: Int] = [:]
        for (index, entry) in entries.enumerated() { for output in entry.node.outputs { producer[output] = index } }
        return producer
    }

    /// The entries that read each value, in order (an entry reading a value twice is listed twice).
    func readers() -> [String: [Int]] {
        var readers: [String: [Int]] = [:]
        for (index, entry) in entries.enumerated() {
            for input in entry.node.inputs { readers[input, default: []].append(index) }
        }
        return readers
    }

    /// Whether a rewrite may make `value` disappear.
    func isInternal(_ value: String, uses: [String: Int]) -> Bool {
        !outputs.contains(value) && !required.contains(value) && uses[value] == 1
    }

    func request(for entry: Entry) -> KernelRequest {
        KernelRequest(
            node: entry.node, opset: opset,
            constants: entry.node.inputs.map { $0.isEmpty ? nil : constants[$0] },
            activation: entry.activation, fusedBias: entry.fusedBias, elementwise: entry.elementwise,
            weightTransposed: entry.weightTransposed)
    }

    /// Entries sorted so every value is produced before it is read.
    mutating func sortTopologically() throws {
        let graph = Graph(nodes: entries.map(\.node), inputs: inputs + constants.keys.map { ValueInfo(name: $0) })
        let order = try graph.topologicalOrder()
        entries = order.map { entries[$0] }
    }

    /// Puts `replacements[i]` in the place of entry `i` and drops the entries in `removed`: how a
    /// fusion pass swaps a pattern's nodes for its fused one (placed where its last node was).
    mutating func replace(_ replacements: [Int: Entry], removing removed: Set<Int>) {
        var result: [Entry] = []
        for (index, entry) in entries.enumerated() {
            if let replacement = replacements[index] {
                result.append(replacement)
            } else if !removed.contains(index) {
                result.append(entry)
            }
        }
        entries = result
    }

    /// A name not used by any value yet.
    func freshName(_ base: String) -> String {
        var name = base
        var counter = 0
        let taken = Set(entries.flatMap { $0.node.outputs }).union(constants.keys)
        while taken.contains(name) { counter += 1; name = "\(base)_\(counter)" }
        return name
    }
}
