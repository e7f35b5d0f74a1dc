import LetheCore
import LetheIR

extension WorkingGraph {
    /// Replaces the tanh form of GELU, `½ x (1 + tanh(√(2/π) (x + 0.044715 x³)))`, spelled out in
    /// Mul, Add, Pow, Div and Tanh nodes, with one Gelu(approximate = "tanh") node, which the epilogue
    /// fusion can then move into the producing MatMul or Add. Exporters group the products
    /// differently (JAX's magika builds the cube as three Muls and applies x and ½ last; PyTorch
    /// multiplies ½ x first), so the cube and the outer factor are matched as monomials
    /// `coefficient · x^power` over Mul, Pow and Div by scalar constants rather than as one fixed
    /// tree. Every intermediate must be read only inside the pattern, every constant must be a
    /// float32 scalar (any rank, as long as it cannot raise the rank of x), and the coefficients must
    /// match GELU's to 1e-6, so the replacement computes the same function.
    mutating func fuseTanhGelu() {
        let uses = useCounts()
        let consumers = readers()
        let producer = producers()
        let matcher = MonomialMatcher(graph: self, uses: uses, producer: producer)
        func soleConsumer(_ value: String, _ op: String) -> Int? {
            guard isInternal(value, uses: uses), let list = consumers[value], list.count == 1,
                entries[list[0]].node.opType == op, entries[list[0]].node.inputs.count == 2
            else { return nil }
            return list[0]
        }
        var removed = Set<Int>()
        var replacements: [Int: Entry] = [:]
        for (tanhIndex, tanh) in entries.enumerated() where tanh.node.opType == "Tanh" {
            guard let argument = tanh.node.inputs.first, let scaled = matcher.internalProducer(argument),
                entries[scaled].node.opType == "Mul"
            else { continue }
            // √(2/π) · (x + 0.044715 x³), the scale on either side.
            var found: (x: String, group: [Int], constants: [String])?
            for side in 0..<2 {
                let scale = entries[scaled].node.inputs[side], sum = entries[scaled].node.inputs[1 - side]
                guard matcher.scalar(scale).map({ near($0, 0.7978845608028654) }) == true,
                    let sumIndex = matcher.internalProducer(sum), entries[sumIndex].node.opType == "Add"
                else { continue }
                let terms = entries[sumIndex].node.inputs
                for (x, cube) in [(terms[0], terms[1]), (terms[1], terms[0])] {
                    guard let m = matcher.monomial(cube, of: x), m.power == 3, near(m.coefficient, 0.044715)
                    else { continue }
                    found = (x, m.nodes + [sumIndex, scaled], m.constants + [scale])
                    break
                }
                if found != nil { break }
            }
            guard let found else { continue }
            let x = found.x
            var group = found.group, constantNames = found.constants
            group.append(tanhIndex)
            // 1 + tanh(…), then Muls that together multiply by ½ x.
            guard let plusIndex = soleConsumer(tanh.node.outputs[0], "Add") else { continue }
            let plus = entries[plusIndex].node
            let one = plus.inputs[0] == tanh.node.outputs[0] ? plus.inputs[1] : plus.inputs[0]
            guard matcher.scalar(one).map({ $0 == 1 }) == true else { continue }
            group.append(plusIndex)
            constantNames.append(one)
            var current = plus.outputs[0], coefficient = 1.0, power = 0
            var last: Int?
            for _ in 0..<4 {
                guard let mulIndex = soleConsumer(current, "Mul") else { break }
                let mul = entries[mulIndex].node
                let other = mul.inputs[0] == current ? mul.inputs[1] : mul.inputs[0]
                guard let m = matcher.monomial(other, of: x) else { break }
                coefficient *= m.coefficient
                power += m.power
                group += m.nodes + [mulIndex]
                constantNames += m.constants
                current = mul.outputs[0]
                if power == 1 && near(coefficient, 0.5) {
                    last = mulIndex
                    break
                }
                if power > 1 { break }
            }
            guard let last, removed.isDisjoint(with: group), Set(group).count == group.count,
                constantNames.allSatisfy({ (constants[$0]?.rank ?? 0) <= matcher.minimumRank(x) })
            else { continue }
            removed.formUnion(group)
            let gelu = Node(
                name: tanh.node.name.isEmpty ? "tanh_gelu_\(tanhIndex)" : tanh.node.name + "::gelu", opType: "Gelu",
                inputs: [x], outputs: entries[last].node.outputs,
                attributes: [(name: "approximate", value: .string(Array("tanh".utf8)))])
            // The last Mul comes after every node of the pattern and after x's producer.
            replacements[last] = Entry(node: gelu)
        }
        replace(replacements, removing: removed)
    }
}

/// Within one part in a million, the tolerance for recognising a constant of a fused formula.
private func near(_ value: Double, _ target: Double) -> Bool {
    abs(value - target) <= 1e-6 * abs(target)
}
