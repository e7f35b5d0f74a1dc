import LetheCore
import LetheIR

extension WorkingGraph {
    /// Replaces scaled dot-product attention — `MatMul(a, b)`, an optional Div or Mul by a constant
    /// scalar, Softmax on the last axis, MatMul with v — by one Attention node (`AttentionKernel`)
    /// that keeps each (batch, head) score matrix in cache. The Transposes and TransposedGathers
    /// that split the heads out of a projection, and a Transpose merging them back that keeps the
    /// last axis last, become strides of that node, so none of them copies its tensor. Runs after
    /// `fuseTransposeIntoGathers` and before `fuseEpilogues`.
    mutating func fuseAttention() {
        let uses = useCounts()
        let producer = producers()
        let readers = readers()
        var claimed = Set<Int>()
        var replacements: [Int: Entry] = [:]

        func isPlain(_ index: Int, _ opType: String, domain: String = "") -> Bool {
            let entry = entries[index]
            return entry.node.opType == opType && entry.node.domain == domain && entry.activation == nil
                && entry.fusedBias == nil && entry.elementwise == nil && !claimed.contains(index)
        }
        /// The one entry producing `value` as `opType`, when the pattern may swallow `value`.
        func internalProducer(of value: String, _ opTypes: Set<String>) -> Int? {
            guard let index = producer[value], isInternal(value, uses: uses),
                opTypes.contains(where: { isPlain(index, $0) })
            else { return nil }
            return index
        }

        for (index, entry) in entries.enumerated() where isPlain(index, "MatMul") {
            let product = entry.node
            guard product.inputs.count == 2, product.outputs.count == 1,
                let softmaxIndex = internalProducer(of: product.inputs[0], ["Softmax"]),
                entries[softmaxIndex].node.inputs.count == 1,
                (try? request(for: entries[softmaxIndex]).int("axis", opset < 13 ? 1 : -1)) == -1
            else { continue }
            var scale: Float = 1
            var scores = entries[softmaxIndex].node.inputs[0]
            var pattern = [softmaxIndex, index]
            if let scaleIndex = internalProducer(of: scores, ["Div", "Mul"]),
                let (input, factor) = scalarFactor(entries[scaleIndex].node, scores)
            {
                scale = factor
                scores = input
                pattern.append(scaleIndex)
            }
            guard let scoresIndex = internalProducer(of: scores, ["MatMul"]),
                entries[scoresIndex].node.inputs.count == 2
            else { continue }
            pattern.append(scoresIndex)
            let a = peelView(entries[scoresIndex].node.inputs[0], producer, uses, claimed)
            let b = peelView(entries[scoresIndex].node.inputs[1], producer, uses, claimed)
            let v = peelView(product.inputs[1], producer, uses, claimed)
            // An operand read twice (q · qᵀ) keeps its nodes: each peel would claim them.
            let peeled = a.nodes + b.nodes + v.nodes
            guard Set(peeled).count == peeled.count else { continue }
            pattern += peeled

            var output = product.outputs[0]
            var attributes: [(name: String, value: Attribute)] = [(name: "scale", value: .float(scale))]
            var last = index
            if let transposeIndex = readers[output]?.first, readers[output]?.count == 1,
                isInternal(output, uses: uses), isPlain(transposeIndex, "Transpose"),
                let perm = try? request(for: entries[transposeIndex]).ints("perm"),
                isPermutation(perm), perm.last == perm.count - 1
            {
                attributes.append((name: "out_perm", value: .ints(perm)))
                output = entries[transposeIndex].node.outputs[0]
                pattern.append(transposeIndex)
                last = transposeIndex
            }
            for (prefix, view) in zip(AttentionKernel.viewPrefixes, [a.view, b.view, v.view]) {
                if let permutation = view.permutation {
                    attributes.append((name: "\(prefix)_perm", value: .ints(permutation)))
                }
                if let i = view.index { attributes.append((name: "\(prefix)_index", value: .int(i))) }
            }
            var node = product
            node.opType = "Attention"
            node.domain = OperatorRegistry.internalDomain
            node.inputs = [a.source, b.source, v.source]
            node.outputs = [output]
            node.attributes = attributes
            claimed.formUnion(pattern)
            replacements[last] = Entry(node: node)
        }
        replace(replacements, removing: claimed)
    }

    /// `(x, factor)` when `node` is `x / c` or `x · c` (either side) of `value` for a constant
    /// float32 scalar c, so `node`'s output is `factor · x`.
    private func scalarFactor(_ node: Node, _ value: String) -> (String, Float)? {
        guard node.inputs.count == 2, node.outputs == [value] else { return nil }
        func scalar(_ name: String) -> Float? {
            // Rank 2 at most: a scalar of higher rank would raise the rank of the scores.
            guard let c = constants[name], c.dtype == .float32, c.elementCount == 1, c.rank <= 2 else { return nil }
            return c.floats[0]
        }
        if node.opType == "Div", let c = scalar(node.inputs[1]), c != 0 { return (node.inputs[0], 1 / c) }
        if node.opType == "Mul", let c = scalar(node.inputs[1]) { return (node.inputs[0], c) }
        if node.opType == "Mul", let c = scalar(node.inputs[0]) { return (node.inputs[1], c) }
        return nil
    }

    /// The value an operand reads once its only-reader Transposes and at most one TransposedGather
    /// are folded into a view of it, with the entries folded.
    private func peelView(
        _ value: String, _ producer: [String: Int], _ uses: [String: Int], _ claimed: Set<Int>
    ) -> (source: String, view: AxisView, nodes: [Int]) {
        var view = AxisView.identity
        var source = value
        var nodes: [Int] = []
        while view.index == nil, let index = producer[source], !claimed.contains(index),
            isInternal(source, uses: uses)
        {
            let entry = entries[index]
            guard entry.activation == nil, entry.fusedBias == nil, entry.elementwise == nil,
                let perm = try? request(for: entry).ints("perm"), isPermutation(perm)
            else { break }
            let outer = view.permutation
            if entry.node.opType == "Transpose", entry.node.domain.isEmpty, entry.node.inputs.count == 1 {
                guard outer == nil || outer?.count == perm.count else { break }
                // Reading axis j of the view reads axis outer[j] of the Transpose, axis perm[outer[j]] of its input.
                view.permutation = outer.map { $0.map { perm[$0] } } ?? perm
            } else if entry.node.opType == "TransposedGather", entry.node.domain == OperatorRegistry.internalDomain,
                entry.node.inputs.count == 2, let indexTensor = constants[entry.node.inputs[1]],
                indexTensor.rank == 0, let i = try? indexTensor.intValues().first,
                outer == nil || outer?.count == perm.count - 1
            {
                // The gathered tensor's axis j is the input's axis perm[1 + j].
                view.permutation = [perm[0]] + (outer.map { $0.map { perm[1 + $0] } } ?? Array(perm.dropFirst()))
                view.index = i
            } else {
                break
            }
            nodes.append(index)
            source = entry.node.inputs[0]
        }
        return (source, view, nodes)
    }

    private func isPermutation(_ perm: [Int]) -> Bool { !perm.isEmpty && Set(perm) == Set(0..<perm.count) }
}
