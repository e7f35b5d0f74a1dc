import LetheCore
import LetheIR

/// Everything the projection needs that does not depend on α: each layer's weight (as `O × d` float64
/// per group) and its retain and forget statistics, decomposed into eigen-bases when several α pairs
/// will be tried (each then costs only the scales and four products per layer), or kept for one
/// Cholesky solve per side when one pair will (`ResolventSpace`: no eigen-decomposition at all).
public struct ProjectionPlan: Sendable {
    public struct Entry: Sendable {
        public let layer: WeightLayer
        let original: Tensor
        /// Per group, row-major `(O/g) × d`.
        let weights: [[Double]]
        let retainSpaces: [any InputSpace]
        let forgetSpaces: [any InputSpace]
    }

    public let entries: [Entry]

    /// Prepares every layer's statistics: eigen-decomposed when `decompose` (an α search), else kept
    /// for a single α pair. Layers without statistics are an error: the set must come from the same
    /// model and layer selection.
    public init(model: Model, layers: [WeightLayer], statistics: StatisticsSet, decompose: Bool = true) throws {
        var entries: [Entry] = []
        for layer in layers {
            guard let stats = statistics[layer.name] else {
                throw StatisticsError(
                    "no statistics for layer \(layer.name); collect them on this model with the same \(Setting.layers)")
            }
            guard stats.groups == layer.groups, stats.dimension == layer.inputDimension else {
                throw StatisticsError(
                    "statistics of layer \(layer.name) are \(stats.groups) group(s) of size \(stats.dimension), the model's weight needs \(layer.groups) of size \(layer.inputDimension)"
                )
            }
            guard stats.retain.count == stats.groups, stats.forget.count == stats.groups else {
                throw StatisticsError("statistics of layer \(layer.name) hold row counts only, no matrices")
            }
            guard let tensor = LayerDiscovery.weightTensor(of: layer, in: model.graph) else {
                throw StatisticsError("weight \(layer.name) is not in the model")
            }
            let retain = try statistics.spaces(of: stats, forget: false, decompose: decompose)
            let forget = try statistics.spaces(of: stats, forget: true, decompose: decompose)
            entries.append(
                Entry(
                    layer: layer, original: tensor, weights: ProjectionPlan.groupWeights(tensor, layer: layer),
                    retainSpaces: retain, forgetSpaces: forget))
        }
        self.entries = entries
    }

    /// The patched weights for one α pair, keyed by weight name, each in its original dtype and shape.
    public func patchedWeights(alphaRetain: Double, alphaForget: Double) throws -> [String: Tensor] {
        var result: [String: Tensor] = [:]
        for entry in entries {
            let layer = entry.layer
            let rowsPerGroup = layer.outputDimension / layer.groups
            let projected = try (0..<layer.groups).map { g in
                try InputProjection.apply(
                    to: entry.weights[g], outputs: rowsPerGroup, retain: entry.retainSpaces[g],
                    alphaRetain: alphaRetain,
                    forget: entry.forgetSpaces[g], alphaForget: alphaForget)
            }
            result[layer.name] = entry.original.replacingValues(
                with: ProjectionPlan.storedOrder(projected, layer: layer))
        }
        return result
    }

    /// Splits a stored weight into per-group `O × d` matrices.
    static func groupWeights(_ tensor: Tensor, layer: WeightLayer) -> [[Double]] {
        let values = tensor.doubleValues()
        let d = layer.inputDimension, o = layer.outputDimension
        switch layer.orientation {
        case .outputByInput:
            let rows = o / layer.groups
            return (0..<layer.groups).map { g in Array(values[(g * rows * d)..<((g + 1) * rows * d)]) }
        case .inputByOutput:
            var w = [Double](repeating: 0, count: o * d)
            for i in 0..<d { for j in 0..<o { w[j * d + i] = values[i * o + j] } }
            return [w]
        }
    }

    /// Joins per-group `O × d` matrices back into the stored layout.
    static func storedOrder(_ groups: [[Double]], layer: WeightLayer) -> [Double] {
        switch layer.orientation {
        case .outputByInput:
            return groups.flatMap { $0 }
        case .inputByOutput:
            let d = layer.inputDimension, o = layer.outputDimension
            let w = groups[0]
            var b = [Double](repeating: 0, count: o * d)
            for j in 0..<o { for i in 0..<d { b[i * o + j] = w[j * d + i] } }
            return b
        }
    }
}

extension Model {
    /// This model with `weights` (keyed by initializer name or Constant output) replacing the originals.
    public func replacingWeights(_ weights: [String: Tensor]) -> Model {
        var model = self
        for index in model.graph.initializers.indices {
            if let tensor = weights[model.graph.initializers[index].name] {
                model.graph.initializers[index].tensor = tensor
            }
        }
        for index in model.graph.nodes.indices where model.graph.nodes[index].opType == "Constant" {
            guard let output = model.graph.nodes[index].outputs.first, let tensor = weights[output],
                model.graph.initializer(named: output) == nil
            else { continue }
            model.graph.nodes[index].attributes = model.graph.nodes[index].attributes.map {
                $0.name == "value" ? (name: "value", value: .tensor(tensor)) : $0
            }
        }
        return model
    }
}
