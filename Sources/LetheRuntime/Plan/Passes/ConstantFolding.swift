import LetheCore
import LetheIR

extension WorkingGraph {
    /// Runs every node whose inputs are all constants once, now, and keeps its outputs as constants.
    /// Nodes that fail are left in place so the error surfaces, with its node, when the model runs.
    mutating func foldConstants(context: ExecutionContext) {
        var kept: [Entry] = []
        for entry in entries {
            let node = entry.node
            let foldable =
                OperatorRegistry.isFoldable(node.opType)
                && node.inputs.allSatisfy { $0.isEmpty || constants[$0] != nil }
                && !node.outputs.isEmpty
            guard foldable, let factory = OperatorRegistry.factory(for: node),
                let kernel = try? factory(request(for: entry)),
                let results = try? kernel.run(node.inputs.map { $0.isEmpty ? nil : constants[$0] }, context),
                results.count >= node.outputs.filter({ !$0.isEmpty }).count || results.count >= node.outputs.count
            else {
                kept.append(entry)
                continue
            }
            for (index, name) in node.outputs.enumerated() where !name.isEmpty && index < results.count {
                constants[name] = results[index]
            }
        }
        entries = kept
    }

    /// Drops nodes whose outputs nothing needs.
    mutating func removeDeadNodes() {
        var needed = Set(outputs).union(required)
        var kept: [Entry] = []
        for entry in entries.reversed() where entry.node.outputs.contains(where: { needed.contains($0) }) {
            kept.append(entry)
            needed.formUnion(entry.node.inputs)
        }
        entries = kept.reversed()
    }
}
