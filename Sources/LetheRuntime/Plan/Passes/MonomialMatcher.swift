import LetheCore
import LetheIR

/// Reads a value as `coefficient · x^power` when it is built from x and float32 scalar constants by
/// Mul, Pow with a small integer exponent, and Div by a constant, through values nothing else reads.
struct MonomialMatcher {
    struct Monomial {
        var coefficient: Double
        var power: Int
        /// Entries that compute it (x's own producer excluded).
        var nodes: [Int]
        /// Constant values it reads.
        var constants: [String]
    }

    let graph: WorkingGraph
    let uses: [String: Int]
    let producer: [String: Int]

    /// The producing entry of a value only one node reads (so the pattern may absorb it).
    func internalProducer(_ value: String) -> Int? {
        guard graph.isInternal(value, uses: uses) else { return nil }
        return producer[value]
    }

    /// The value of a float32 constant with exactly one element.
    func scalar(_ name: String) -> Double? {
        guard let t = graph.constants[name], t.dtype == .float32, t.elementCount == 1 else { return nil }
        return Double(t.floatValues()[0])
    }

    func monomial(_ value: String, of x: String, depth: Int = 0) -> Monomial? {
        if value == x { return Monomial(coefficient: 1, power: 1, nodes: [], constants: []) }
        if let c = scalar(value) { return Monomial(coefficient: c, power: 0, nodes: [], constants: [value]) }
        guard depth < 8, let index = internalProducer(value) else { return nil }
        let node = graph.entries[index].node
        guard node.inputs.count == 2, node.outputs.count == 1 else { return nil }
        switch node.opType {
        case "Mul":
            guard let a = monomial(node.inputs[0], of: x, depth: depth + 1),
                let b = monomial(node.inputs[1], of: x, depth: depth + 1)
            else { return nil }
            return Monomial(
                coefficient: a.coefficient * b.coefficient, power: a.power + b.power,
                nodes: a.nodes + b.nodes + [index], constants: a.constants + b.constants)
        case "Div":
            guard let a = monomial(node.inputs[0], of: x, depth: depth + 1), let d = scalar(node.inputs[1]), d != 0
            else { return nil }
            return Monomial(
                coefficient: a.coefficient / d, power: a.power, nodes: a.nodes + [index],
                constants: a.constants + [node.inputs[1]])
        case "Pow":
            guard let a = monomial(node.inputs[0], of: x, depth: depth + 1), let e = scalar(node.inputs[1]),
                e == e.rounded(), e >= 1, e <= 4
            else { return nil }
            let exponent = Int(e)
            var coefficient = 1.0
            for _ in 0..<exponent { coefficient *= a.coefficient }
            return Monomial(
                coefficient: coefficient, power: a.power * exponent, nodes: a.nodes + [index],
                constants: a.constants + [node.inputs[1]])
        default:
            return nil
        }
    }

    /// A lower bound on the rank of `value`: a broadcasting node is at least as high as its
    /// constant operands, a MatMul with a 2-D weight at least 2.
    func minimumRank(_ value: String, depth: Int = 0) -> Int {
        if let t = graph.constants[value] { return t.rank }
        guard depth < 16, let index = producer[value] else { return 0 }
        let node = graph.entries[index].node
        switch node.opType {
        case "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Where", "Equal":
            return node.inputs.filter { !$0.isEmpty }.map { minimumRank($0, depth: depth + 1) }.max() ?? 0
        case "MatMul":
            return 2
        case "Relu", "Gelu", "Tanh", "Sigmoid", "Erf", "Cast", "Sqrt", "Reciprocal", "Neg", "Exp", "Identity":
            return node.inputs.first.map { minimumRank($0, depth: depth + 1) } ?? 0
        default:
            return 0
        }
    }
}
