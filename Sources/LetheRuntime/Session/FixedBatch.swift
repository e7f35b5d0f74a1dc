import LetheCore
import LetheIR

/// Models exported with an example batch of one and no dynamic axes — `torch.onnx.export(model,
/// torch.zeros(1, 3, H, W), path)`, the commonest export — declare their batch as 1 and carry it
/// in shape constants. `FixedBatch` makes a runtime copy of such a model that takes any batch,
/// checks it against one-sample runs of the original, and otherwise runs one sample at a time.
/// The copy is only ever run: files are written from the original model.
public enum FixedBatch {
    /// How to run a model on batches.
    public struct Plan: Sendable {
        /// The model to run: the original, or its copy with a free batch axis.
        public var model: Model
        /// The largest batch the model can take (1 when only the original runs), nil for any.
        public var batchLimit: Int?
        /// One line for the user when the batch axis was fixed, nil otherwise.
        public var note: String?
    }

    /// Decides how to run `model` given `probe`, two or more samples of its first runtime input:
    /// unchanged when no runtime input fixes its batch at 1; the free-batch copy when it computes
    /// what one-sample runs of the original compute (within 1e-4 relative); else one sample at a time.
    public static func plan(for model: Model, probe: Tensor, threads: Int? = nil) -> Plan {
        guard isFixed(model) else { return Plan(model: model, batchLimit: nil, note: nil) }
        guard probe.rank >= 1, probe.shape[0] >= 2 else { return Plan(model: model, batchLimit: 1, note: nil) }
        guard model.graph.runtimeInputs.count == 1, let input = model.graph.runtimeInputs.first?.name else {
            return Plan(
                model: model, batchLimit: 1,
                note:
                    "the model was exported with a batch of 1 and has several inputs: running one sample at a time (slower); export with dynamic_axes for speed"
            )
        }
        var reason = "its graph fixes the batch at 1"
        do {
            let freed = freeing(model)
            if try agree(original: model, freed: freed, input: input, probe: probe, threads: threads) {
                return Plan(model: freed, batchLimit: nil, note: nil)
            }
            reason = "its graph computes across the batch when the batch is freed"
        } catch {
            reason = "its graph fails on a free batch axis (\(error))"
        }
        return Plan(
            model: model, batchLimit: 1,
            note:
                "the model was exported with a batch of 1 and \(reason): running one sample at a time (slower); export with dynamic_axes for speed"
        )
    }

    /// Whether a runtime input declares its leading axis as exactly 1.
    public static func isFixed(_ model: Model) -> Bool {
        model.graph.runtimeInputs.contains { $0.shape?.first?.fixedValue == 1 && ($0.shape?.count ?? 0) >= 1 }
    }

    /// The model with its batch axis free: inputs and outputs declare a symbolic leading axis,
    /// Reshapes of batch-carrying values to constant shapes `[1, …]` keep the input's leading
    /// axis instead (`0`, allowzero off), and values made from weights alone that are concatenated
    /// with batch-carrying values along a later axis (a class token) are expanded to the batch first.
    public static func freeing(_ model: Model) -> Model {
        var graph = model.graph
        func freed(_ info: ValueInfo) -> ValueInfo {
            guard var shape = info.shape, shape.first?.fixedValue == 1 else { return info }
            var info = info
            shape[0] = .symbolic("batch")
            info.shape = shape
            return info
        }
        let weights = Set(graph.initializers.map(\.name))
        graph.inputs = graph.inputs.map { weights.contains($0.name) ? $0 : freed($0) }
        graph.outputs = graph.outputs.map(freed)
        // Intermediate shape annotations would still say 1.
        graph.valueInfos = []

        var constants: [String: Tensor] = [:]
        for initializer in graph.initializers { constants[initializer.name] = initializer.tensor }
        for node in graph.nodes where node.opType == "Constant" && node.outputs.count == 1 {
            if let value = try? constantValue(node) { constants[node.outputs[0]] = value }
        }
        var batched = Set(graph.runtimeInputs.map(\.name))
        var added: [Initializer] = []
        var nodes: [Node] = []
        var fresh = 0
        func name(_ base: String) -> String {
            fresh += 1
            return "lethe_batch_\(fresh)_\(base)"
        }
        let order = (try? graph.topologicalOrder()) ?? Array(graph.nodes.indices)
        for index in order {
            var node = graph.nodes[index]
            let carriesBatch = node.inputs.contains { batched.contains($0) }
            if carriesBatch, node.opType == "Reshape", node.inputs.count >= 2, let shape = constants[node.inputs[1]],
                shape.dtype.isInteger, shape.rank == 1, case let values = shape.int64Values(),
                values.first == 1, !values.dropFirst().contains(0)
            {
                let rewritten = name(node.inputs[1])
                added.append(
                    Initializer(
                        name: rewritten, tensor: Tensor(shape: [values.count], values: [0] + Array(values.dropFirst())))
                )
                node.inputs[1] = rewritten
                node.attributes = node.attributes.filter { $0.name != "allowzero" }
            }
            if carriesBatch, node.opType == "Concat", let axis = node.attribute("axis")?.intValue, axis > 0,
                let data = node.inputs.first(where: { batched.contains($0) })
            {
                for (position, input) in node.inputs.enumerated() where !input.isEmpty && !batched.contains(input) {
                    // A value made from weights alone, of batch 1: Expand(value, [batch] + shape(value)[1:]).
                    let dataShape = name("data_shape"), valueShape = name("value_shape"), leading = name("leading")
                    let rest = name("rest"), target = name("target"), expanded = name("expanded")
                    let zero = name("zero"), one = name("one"), end = name("end")
                    added += [
                        Initializer(name: zero, tensor: Tensor(shape: [1], values: [Int64(0)])),
                        Initializer(name: one, tensor: Tensor(shape: [1], values: [Int64(1)])),
                        Initializer(name: end, tensor: Tensor(shape: [1], values: [Int64.max]))
                    ]
                    nodes += [
                        Node(opType: "Shape", inputs: [data], outputs: [dataShape]),
                        Node(opType: "Slice", inputs: [dataShape, zero, one], outputs: [leading]),
                        Node(opType: "Shape", inputs: [input], outputs: [valueShape]),
                        Node(opType: "Slice", inputs: [valueShape, one, end], outputs: [rest]),
                        Node(
                            opType: "Concat", inputs: [leading, rest], outputs: [target],
                            attributes: [("axis", .int(0))]),
                        Node(opType: "Expand", inputs: [input, target], outputs: [expanded])
                    ]
                    node.inputs[position] = expanded
                }
            }
            if carriesBatch { batched.formUnion(node.outputs.filter { !$0.isEmpty }) }
            nodes.append(node)
        }
        graph.nodes = nodes
        graph.initializers += added
        var copy = model
        copy.graph = graph
        return copy
    }

    /// Whether `freed` on the first two rows of `probe` gives, row by row, what `original` gives
    /// on each row alone, for every output.
    static func agree(original: Model, freed: Model, input: String, probe: Tensor, threads: Int?) throws -> Bool {
        let options = SessionOptions(threads: threads)
        let one = try InferenceSession(model: original, options: options)
        let many = try InferenceSession(model: freed, options: options)
        let separate = try (0..<2).map { try one.run([input: InferenceSession.rows(probe, $0, 1)]) }
        let together = try many.run([input: InferenceSession.rows(probe, 0, 2)])
        for name in one.outputNames {
            guard let joint = together[name], joint.rank >= 1, joint.shape[0] == 2 else { return false }
            let values = joint.floatValues(), half = values.count / 2
            for (row, outputs) in separate.enumerated() {
                guard let alone = outputs[name], alone.elementCount == half else { return false }
                for (a, b) in zip(alone.floatValues(), values[(row * half)..<((row + 1) * half)]) {
                    guard abs(a - b) <= 1e-4 * max(1, abs(a)) || (a.isNaN && b.isNaN) else { return false }
                }
            }
        }
        return true
    }
}
