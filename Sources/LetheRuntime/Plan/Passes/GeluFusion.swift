import LetheCore
import LetheIR

extension WorkingGraph {
    /// Replaces the erf form of GELU that both PyTorch exporters emit,
    /// `x · 0.5 · (1 + erf(x / √2))` as Div, Erf, Add and two Muls in either grouping, with one
    /// Gelu node, which the epilogue fusion can then move into the producing MatMul.
    mutating func fuseErfGelu() {
        let uses = useCounts()
        let consumers = readers()
        let producer = producers()
        func constantNear(_ name: String, _ value: Float) -> Bool {
            guard let t = constants[name], t.elementCount == 1, t.dtype.isFloatingPoint else { return false }
            return abs(t.floatValues()[0] - value) <= 1e-4 * max(1, abs(value))
        }
        /// The other input of a two-input node, given one.
        func other(_ node: Node, _ name: String) -> String? {
            guard node.inputs.count == 2 else { return nil }
            if node.inputs[0] == name { return node.inputs[1] }
            if node.inputs[1] == name { return node.inputs[0] }
            return nil
        }
        func soleConsumer(_ value: String, _ op: String) -> Int? {
            guard isInternal(value, uses: uses), let list = consumers[value], list.count == 1,
                entries[list[0]].node.opType == op
            else { return nil }
            return list[0]
        }
        var removed = Set<Int>()
        var replacements: [Int: Entry] = [:]
        for (erfIndex, erf) in entries.enumerated() where erf.node.opType == "Erf" {
            guard let divided = erf.node.inputs.first, let divIndex = producer[divided], isInternal(divided, uses: uses)
            else { continue }
            let div = entries[divIndex].node
            let x: String
            if div.opType == "Div", div.inputs.count == 2, constantNear(div.inputs[1], 1.4142135) {
                x = div.inputs[0]
            } else if div.opType == "Mul", div.inputs.count == 2, constantNear(div.inputs[1], 0.70710678) {
                x = div.inputs[0]
            } else if div.opType == "Mul", div.inputs.count == 2, constantNear(div.inputs[0], 0.70710678) {
                x = div.inputs[1]
            } else {
                continue
            }
            guard let addIndex = soleConsumer(erf.node.outputs[0], "Add"),
                let one = other(entries[addIndex].node, erf.node.outputs[0]), constantNear(one, 1)
            else { continue }
            let sum = entries[addIndex].node.outputs[0]
            guard let firstIndex = soleConsumer(sum, "Mul"), let firstOther = other(entries[firstIndex].node, sum)
            else { continue }
            let product = entries[firstIndex].node.outputs[0]
            guard let secondIndex = soleConsumer(product, "Mul"),
                let secondOther = other(entries[secondIndex].node, product)
            else { continue }
            // Either (x · s) · 0.5 or x · (0.5 · s).
            let matches =
                (firstOther == x && constantNear(secondOther, 0.5))
                || (constantNear(firstOther, 0.5) && secondOther == x)
            guard matches else { continue }
            let group = [divIndex, erfIndex, addIndex, firstIndex, secondIndex]
            guard removed.isDisjoint(with: group) else { continue }
            removed.formUnion(group)
            let gelu = Node(
                name: erf.node.name.isEmpty ? "gelu_\(erfIndex)" : erf.node.name, opType: "Gelu",
                inputs: [x], outputs: entries[secondIndex].node.outputs)
            // The fused node takes the place of the last Mul, after every reader of x's producer.
            replacements[secondIndex] = Entry(node: gelu)
        }
        replace(replacements, removing: removed)
    }
}
