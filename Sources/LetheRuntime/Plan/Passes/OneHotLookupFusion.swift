import LetheCore
import LetheIR

extension WorkingGraph {
    /// Replaces a one-hot encoding multiplied by a constant matrix — `MatMul(Cast(Equal(Expand(x,
    /// shape), arange(D)), float), W)`, how JAX exports an embedding (magika: [N, 2048] bytes →
    /// [N, 2048, 257] → [N, 2048, 64]) — with a row lookup in a table: row d of W for index d, a row
    /// of zeros for an index outside 0..<D. Then elementwise nodes that read only the lookup and
    /// constants which act row by row (a bias Add, a GELU) are applied to the table itself, once,
    /// by the very kernels the graph would have run, so they cost nothing per input.
    ///
    /// The one-hot and the GEMM over it were most of magika's memory traffic (the one-hot alone is
    /// 2 MB a sample as float). The result is exact: each product row of the one-hot with W is one
    /// weight row times 1 plus zeros, which is why W must be finite (∞ · 0 is NaN).
    mutating func fuseOneHotLookups(context: ExecutionContext) {
        var uses = useCounts()
        let producer = producers()
        let consumers = readers()
        func internalProducer(_ value: String, _ op: String) -> Int? {
            guard isInternal(value, uses: uses), let index = producer[value], entries[index].node.opType == op,
                entries[index].node.outputs.count == 1
            else { return nil }
            return index
        }
        var removed = Set<Int>()
        for (matmulIndex, entry) in entries.enumerated() where entry.node.opType == "MatMul" {
            let matmul = entry.node
            guard matmul.inputs.count == 2, entry.activation == nil, entry.fusedBias == nil, !entry.weightTransposed,
                let weight = constants[matmul.inputs[1]], weight.dtype == .float32, weight.rank == 2,
                weight.floatValues().allSatisfy(\.isFinite),
                let castIndex = internalProducer(matmul.inputs[0], "Cast"),
                (try? request(for: entries[castIndex]).int("to", 0)) == 1,
                let equalIndex = internalProducer(entries[castIndex].node.inputs[0], "Equal")
            else { continue }
            let equal = entries[equalIndex].node
            guard equal.inputs.count == 2 else { continue }
            var match: (expand: Int, classes: Tensor)?
            for side in 0..<2 {
                if let classes = constants[equal.inputs[1 - side]],
                    let expandIndex = internalProducer(equal.inputs[side], "Expand"),
                    entries[expandIndex].node.inputs.count == 2
                {
                    match = (expandIndex, classes)
                }
            }
            // The classes: 0, 1, …, D − 1 along the last axis of an otherwise all-ones shape of rank ≥ 2,
            // so the one-hot's rank is at least 2 and the MatMul is a row-by-row product.
            guard let (expandIndex, classes) = match, classes.dtype.isInteger, classes.rank >= 2,
                classes.shape.dropLast().allSatisfy({ $0 == 1 }), classes.shape.last == weight.shape[0],
                classes.int64Values().enumerated().allSatisfy({ Int64($0.offset) == $0.element }),
                removed.isDisjoint(with: [castIndex, equalIndex, expandIndex])
            else { continue }
            let d = weight.shape[0], n = weight.shape[1]
            let tableShape = [Int](repeating: 1, count: classes.rank - 2) + [d + 1, n]
            var table = Tensor(zeros: .float32, shape: tableShape)
            table.withUnsafeMutableBufferPointer(of: Float.self) { buffer in
                weight.withUnsafeBufferPointer(of: Float.self) { w in
                    for i in 0..<(d * n) { buffer[i] = w[i] }
                }
            }
            // Fold the elementwise readers of the lookup into the table while they act row by row.
            var output = matmul.outputs[0]
            var absorbed: [Int] = []
            while isInternal(output, uses: uses), let readers = consumers[output], readers.count == 1,
                let folded = foldIntoTable(table, value: output, entry: entries[readers[0]], context: context)
            {
                table = folded
                absorbed.append(readers[0])
                output = entries[readers[0]].node.outputs[0]
            }
            let tableName = freshName(matmul.name + "::lookup_table")
            constants[tableName] = table
            let expand = entries[expandIndex].node
            let lookup = Node(
                name: matmul.name + "::one_hot_lookup", opType: "OneHotLookup", domain: OperatorRegistry.internalDomain,
                inputs: [
                    expand.inputs[0], expand.inputs[1], tableName,
                    equal.inputs[0] == expand.outputs[0]
                        ? equal.inputs[1] : equal.inputs[0]
                ],
                outputs: [output])
            // The lookup takes the MatMul's place: its inputs exist by then, and the readers of its
            // (last absorbed) output all come after the absorbed nodes.
            entries[matmulIndex] = Entry(node: lookup)
            removed.formUnion([castIndex, equalIndex, expandIndex])
            removed.formUnion(absorbed)
            uses = useCounts()
        }
        entries = entries.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    }

    /// `entry` applied to the lookup table when its only non-constant input is `value` and it acts
    /// on each row alone: a float unary function, or a binary one whose constant is all ones but
    /// for its last axis (1 or the row width) and not of higher rank than the table. Nil otherwise.
    private func foldIntoTable(_ table: Tensor, value: String, entry: Entry, context: ExecutionContext) -> Tensor? {
        let node = entry.node
        let unary = Set(UnaryOp.allCases.map(\.rawValue)).subtracting(["IsNaN", "IsInf"])
            .union(Activation.opTypes.subtracting(["Clip"]))
        let binary: Set<String> = ["Add", "Sub", "Mul", "Div", "Pow", "Max", "Min"]
        guard entry.activation == nil, entry.fusedBias == nil, node.outputs.count == 1,
            let factory = OperatorRegistry.factory(for: node)
        else { return nil }
        var inputs: [Tensor?]
        if unary.contains(node.opType), node.inputs.count == 1, node.inputs[0] == value {
            inputs = [table]
        } else if binary.contains(node.opType), node.inputs.count == 2, node.inputs.filter({ $0 == value }).count == 1 {
            let other = node.inputs[0] == value ? node.inputs[1] : node.inputs[0]
            guard let constant = constants[other], constant.dtype == .float32, constant.rank <= table.rank,
                constant.shape.dropLast().allSatisfy({ $0 == 1 }),
                constant.shape.last.map({ $0 == 1 || $0 == table.shape.last }) ?? true
            else { return nil }
            inputs = node.inputs.map { $0 == value ? table : constant }
        } else {
            return nil
        }
        guard let kernel = try? factory(request(for: entry)), let results = try? kernel.run(inputs, context),
            let result = results.first, result.dtype == .float32, result.shape == table.shape
        else { return nil }
        return result
    }
}
