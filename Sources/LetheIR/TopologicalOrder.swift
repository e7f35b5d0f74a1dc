import LetheCore

/// A graph whose nodes cannot be ordered so that every input is produced before it is used.
public struct GraphStructureError: LetheError {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension Graph {
    /// Node indices in an order where each node's inputs are graph inputs, initializers or outputs
    /// of earlier nodes. Keeps file order where it already works; throws on cycles and on inputs
    /// that nothing produces.
    public func topologicalOrder(outerScope: Set<String> = []) throws -> [Int] {
        var available = outerScope
        available.formUnion(inputs.map(\.name))
        available.formUnion(initializers.map(\.name))
        available.insert("")
        var producer: [String: Int] = [:]
        for (index, node) in nodes.enumerated() {
            for output in node.outputs where !output.isEmpty {
                if producer[output] != nil {
                    throw GraphStructureError("value '\(output)' is produced by more than one node")
                }
                producer[output] = index
            }
        }
        var pending = [Int](repeating: 0, count: nodes.count)
        var consumers: [String: [Int]] = [:]
        for (index, node) in nodes.enumerated() {
            for input in Set(node.inputs) where !available.contains(input) {
                guard producer[input] != nil else {
                    throw GraphStructureError("\(describe(node, index)) reads '\(input)', which nothing produces")
                }
                pending[index] += 1
                consumers[input, default: []].append(index)
            }
        }
        var ready = (0..<nodes.count).filter { pending[$0] == 0 }.reversed().map { $0 }
        var order: [Int] = []
        order.reserveCapacity(nodes.count)
        while let index = ready.popLast() {
            order.append(index)
            var released: [Int] = []
            for output in nodes[index].outputs {
                for consumer in consumers[output] ?? [] {
                    pending[consumer] -= 1
                    if pending[consumer] == 0 { released.append(consumer) }
                }
            }
            // Keep file order among newly ready nodes.
            ready.append(contentsOf: released.sorted(by: >))
            ready.sort(by: >)
        }
        guard order.count == nodes.count else {
            let stuck = (0..<nodes.count).first { pending[$0] > 0 }.map { describe(nodes[$0], $0) } ?? "?"
            throw GraphStructureError("graph has a cycle (through \(stuck))")
        }
        return order
    }
}

/// A node as messages name it: by name, or by position when the exporter left the name empty.
func describe(_ node: Node, _ index: Int) -> String {
    node.name.isEmpty ? "node #\(index) (\(node.opType))" : "node '\(node.name)' (\(node.opType))"
}
