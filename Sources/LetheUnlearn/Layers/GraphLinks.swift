import LetheCore
import LetheIR

/// Who makes and who reads each value of a graph, and its initializers by name: what layer, bias
/// and readout discovery walk.
struct GraphLinks {
    /// The node index making each value.
    let producers: [String: Int]
    /// The node indices reading each value, in node order.
    let readers: [String: [Int]]
    /// Initializers by name (the first of a repeated name).
    let initializers: [String: Tensor]

    init(_ graph: Graph) {
        var producers: [String: Int] = [:]
        var readers: [String: [Int]] = [:]
        for (index, node) in graph.nodes.enumerated() {
            for output in node.outputs where !output.isEmpty { producers[output] = index }
            for input in node.inputs where !input.isEmpty { readers[input, default: []].append(index) }
        }
        self.producers = producers
        self.readers = readers
        initializers = Dictionary(
            graph.initializers.map { ($0.name, $0.tensor) }, uniquingKeysWith: { first, _ in first })
    }
}
