import LetheCore
import LetheIR

extension WorkingGraph {
    /// Runs every node whose inputs are all constants once, now, and keeps its outputs as constants
    /// (or takes them from `derived`, where an earlier plan of the session left them).
    /// Nodes that fail are left in place so the error surfaces, with its node, when the model runs.
    mutating func foldConstants(context: ExecutionContext) {
        var kept: [Entry] = []
        for entry in entries {
            let node = entry.node
            let foldable =
                OperatorRegistry.isFoldable(node.opType)
                && node.inputs.allSatisfy { $0.isEmpty || constants[$0] != nil }
                && !node.outputs.isEmpty
            guard foldable else {
                kept.append(entry)
                continue
            }
            if let shared = derived.folded(node) {
                for (name, value) in zip(node.outputs, shared) where !name.isEmpty { constants[name] = value }
                continue
            }
            guard let factory = OperatorRegistry.factory(for: node),
                let kernel = try? factory(request(for: entry)),
                let results = try? kernel.run(node.inputs.map { $0.isEmpty ? nil : constants[$0] }, context),
                results.count >= node.outputs.filter({ !$0.isEmpty }).count || results.count >= node.outputs.count
            else {
                kept.append(entry)
                continue
            }
            let stored = derived.storeFolded(node, results)
            for (index, name) in node.outputs.enumerated() where !name.isEmpty && index < stored.count {
                constants[name] = stored[index]
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
