import LetheCore
import LetheIR

/// Why weights and a graph template do not pair.
public struct WeightPairingError: LetheError {
    public var missing: [String] = []
    public var extra: [String] = []
    public var mismatched: [String] = []

    public var description: String {
        var parts: [String] = []
        if !missing.isEmpty { parts.append("missing from the weights: \(missing.joined(separator: ", "))") }
        if !extra.isEmpty { parts.append("not in the graph: \(extra.joined(separator: ", "))") }
        if !mismatched.isEmpty { parts.append(mismatched.joined(separator: "; ")) }
        return "weights do not match the graph: " + parts.joined(separator: "; ")
    }
}

/// Pairs a weights-only file (safetensors, npz) with an ONNX graph of the same model by name.
///
/// PyTorch's exporter replaces a parameter equal to another by an `Identity` node whose output
/// carries the parameter's name; such names are followed back to the initializer they alias.
public struct GraphTemplate: Sendable {
    public let model: Model
    /// Weight name → initializer name in the template (identity for direct matches).
    public let aliases: [String: String]

    public init(model: Model) {
        self.model = model
        var aliases: [String: String] = [:]
        let initializerNames = Set(model.graph.initializers.map(\.name))
        for name in initializerNames { aliases[name] = name }
        var identitySource: [String: String] = [:]
        for node in model.graph.nodes
        where node.opType == "Identity" && node.inputs.count == 1 && node.outputs.count == 1 {
            identitySource[node.outputs[0]] = node.inputs[0]
        }
        for start in identitySource.keys {
            var current = start
            var steps = 0
            while let next = identitySource[current], steps < identitySource.count {
                current = next
                steps += 1
            }
            if initializerNames.contains(current) { aliases[start] = current }
        }
        self.aliases = aliases
    }

    /// The template with its initializers replaced by `weights` (matched by name or alias).
    /// Shapes must agree; dtypes are converted when `convertDTypes`, else must agree. Every
    /// floating-point template initializer must be given and every weight must be used.
    public func filled(with weights: [Initializer], convertDTypes: Bool = false) throws -> Model {
        var error = WeightPairingError()
        var assigned: [String: (from: String, tensor: Tensor)] = [:]
        for weight in weights {
            guard let target = aliases[weight.name] else {
                error.extra.append(weight.name)
                continue
            }
            if let earlier = assigned[target] {
                if !earlier.tensor.isBitwiseEqual(to: weight.tensor) {
                    error.mismatched.append("'\(weight.name)' and '\(earlier.from)' alias '\(target)' but differ")
                }
                continue
            }
            assigned[target] = (weight.name, weight.tensor)
        }
        var model = self.model
        for index in model.graph.initializers.indices {
            let name = model.graph.initializers[index].name
            let original = model.graph.initializers[index].tensor
            guard let (from, tensor) = assigned[name] else {
                // Integer initializers are shapes and indices the exporter made, not parameters.
                if original.dtype.isFloatingPoint { error.missing.append(name) }
                continue
            }
            guard tensor.shape == original.shape else {
                error.mismatched.append("'\(from)' has shape \(tensor.shape), the graph expects \(original.shape)")
                continue
            }
            if tensor.dtype == original.dtype {
                model.graph.initializers[index].tensor = tensor
            } else if convertDTypes && tensor.dtype.isFloatingPoint && original.dtype.isFloatingPoint {
                model.graph.initializers[index].tensor = tensor.convertedFloatingPoint(to: original.dtype)
            } else {
                error.mismatched.append(
                    "'\(from)' is \(tensor.dtype.rawValue), the graph expects \(original.dtype.rawValue)")
            }
        }
        if !error.missing.isEmpty || !error.extra.isEmpty || !error.mismatched.isEmpty { throw error }
        return model
    }

    /// Maps patched template initializers back to every weight name that aliases them.
    public func weightNames(forInitializer name: String) -> [String] {
        aliases.filter { $0.value == name }.map(\.key).sorted()
    }
}
