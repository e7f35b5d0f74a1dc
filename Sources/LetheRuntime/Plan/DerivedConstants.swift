import LetheCore
import LetheIR

/// Constants that every plan of one session derives from the model in the same way — half-precision
/// initializers widened to float32, node outputs that constant folding computes — made once and
/// shared by the session's plans.
///
/// A session plans once per set of tapped values, so an unlearning run holds an evaluation plan and a
/// statistics plan side by side; without sharing, each kept its own copies (ViT-B/16's folded
/// transposes of its weights were 0.3 GB per plan, before `fuseWeightTransposes` stopped making
/// them). Values are keyed by the original graph's value names, which name the same value in every
/// plan because both derivations run before any rewrite renames anything (`fuseWeightTransposes`
/// only drops Transposes and points their readers at the weight).
final class DerivedConstants: Sendable {
    private let values = Locked<[String: Tensor]>([:])

    init() {}

    /// The value stored under `name`, or `make()`'s, stored for the next plan; nil results are not kept.
    func value(_ name: String, _ make: () -> Tensor?) -> Tensor? {
        if let existing = values.withLock({ $0[name] }) { return existing }
        guard let made = make() else { return nil }
        return values.withLock { values in
            // A plan built concurrently may have stored it first: keep one copy.
            if let existing = values[name] { return existing }
            values[name] = made
            return made
        }
    }

    /// The outputs of `node` a previous plan folded, if it folded every named one.
    func folded(_ node: Node) -> [Tensor?]? {
        guard node.outputs.contains(where: { !$0.isEmpty }) else { return nil }
        return values.withLock { values in
            let outputs = node.outputs.map { $0.isEmpty ? nil : values[$0] }
            for (name, value) in zip(node.outputs, outputs) where !name.isEmpty && value == nil { return nil }
            return outputs
        }
    }

    /// Keeps the outputs `node` folded to (or, when another plan stored them first, returns those).
    func storeFolded(_ node: Node, _ results: [Tensor]) -> [Tensor] {
        values.withLock { values in
            results.enumerated().map { index, tensor in
                guard index < node.outputs.count, !node.outputs[index].isEmpty else { return tensor }
                let name = node.outputs[index]
                if let existing = values[name] { return existing }
                values[name] = tensor
                return tensor
            }
        }
    }
}
