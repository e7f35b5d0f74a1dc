import LetheCore
import LetheIR

/// Finds the weight layers of a model (DESIGN §4): every Conv, Gemm and MatMul whose weight is a
/// constant — an initializer, a Constant node, a 2-D Transpose of one, or an Identity chain back to one.
public enum LayerDiscovery {
    /// A node that looked like a weight layer but cannot be projected, and why.
    public struct Skipped: Sendable, Codable, Hashable {
        public var node: String
        public var reason: String
    }

    /// The model's weight layers in first-use order, those `filter` keeps, and the skipped candidates.
    public static func discover(
        in model: Model, filter: LayerFilter? = nil
    ) -> (layers: [WeightLayer], skipped: [Skipped]) {
        let graph = model.graph
        let links = GraphLinks(graph)
        let producers = links.producers, initializers = links.initializers

        var order: [String] = []
        var layers: [String: WeightLayer] = [:]
        var skipped: [Skipped] = []
        var rejected = Set<String>()
        var chains: [String: Set<String>] = [:]

        for (nodeIndex, node) in graph.nodes.enumerated() where node.domain.isEmpty || node.domain == "ai.onnx" {
            guard ["Conv", "Gemm", "MatMul"].contains(node.opType), node.inputs.count >= 2 else { continue }
            let label = node.name.isEmpty ? "\(node.opType) → \(node.outputs.first ?? "?")" : node.name
            guard
                let constant = resolveConstant(
                    node.inputs[1], graph: graph, producers: producers, initializers: initializers)
            else {
                if let reason = unprojectableWeight(
                    node, graph: graph, producers: producers, initializers: initializers)
                {
                    skipped.append(Skipped(node: label, reason: reason))
                }
                continue
            }
            guard !rejected.contains(constant.source.name) else { continue }
            let candidate: Result<WeightLayer, Reason>
            switch node.opType {
            case "Conv": candidate = convLayer(node, constant)
            case "Gemm": candidate = gemmLayer(node, constant)
            default: candidate = matMulLayer(node, constant)
            }
            switch candidate {
            case .failure(let reason):
                skipped.append(Skipped(node: label, reason: reason.text))
            case .success(var layer):
                chains[layer.name, default: []].formUnion(constant.chain)
                layer.uses[0].node = label
                layer.uses[0].nodeIndex = nodeIndex
                layer.uses[0].isNamed = !node.name.isEmpty
                if var existing = layers[layer.name] {
                    guard existing.orientation == layer.orientation, existing.groups == layer.groups,
                        existing.inputDimension == layer.inputDimension, existing.isConvolution == layer.isConvolution
                    else {
                        skipped.append(
                            Skipped(
                                node: label,
                                reason:
                                    "weight \(layer.name) is also used differently by \(existing.nodeNames.joined(separator: ", "))"
                            ))
                        layers[layer.name] = nil
                        order.removeAll { $0 == layer.name }
                        rejected.insert(layer.name)
                        continue
                    }
                    existing.uses += layer.uses
                    layers[layer.name] = existing
                } else {
                    layers[layer.name] = layer
                    order.append(layer.name)
                }
            }
        }
        var result: [WeightLayer] = []
        for name in order {
            guard let layer = layers[name] else { continue }
            if let reader = otherReader(of: chains[name] ?? [], layer: layer, graph: graph) {
                skipped.append(
                    Skipped(
                        node: layer.nodeNames.joined(separator: ", "),
                        reason:
                            "weight \(name) is also read by \(reader) (a tied weight); patching it would change that node too"
                    ))
                continue
            }
            result.append(layer)
        }
        if let filter { result = result.filter { filter.matches($0) } }
        return (result, skipped)
    }

    static let weightTransforms: Set<String> = [
        "Identity", "Transpose", "Cast", "CastLike", "Reshape", "DequantizeLinear",
        "Slice", "Squeeze", "Unsqueeze", "Flatten"
    ]

    /// Why a node whose weight input is not a plain constant still holds a stored weight Lethe leaves
    /// alone: the weight comes through another operation (Cast, Reshape, DequantizeLinear…), or the
    /// constant is the product's left operand. nil when no stored weight is involved.
    static func unprojectableWeight(
        _ node: Node, graph: Graph, producers: [String: Int], initializers: [String: Tensor]
    ) -> String? {
        func storedOrigin(_ value: String) -> (origin: String, through: [String])? {
            var name = value
            var through: [String] = []
            for _ in 0..<16 {
                if initializers[name] != nil, producers[name] == nil { return (name, through) }
                guard let index = producers[name] else { return nil }
                let producer = graph.nodes[index]
                if producer.opType == "Constant" { return (producer.outputs.first ?? name, through) }
                // Only operations that reshape or re-encode one tensor: their first input is the weight.
                guard weightTransforms.contains(producer.opType), let input = producer.inputs.first, !input.isEmpty
                else { return nil }
                through.append(producer.opType)
                name = input
            }
            return nil
        }
        if let weight = storedOrigin(node.inputs[1]), !weight.through.isEmpty {
            let ops = weight.through.filter { !["Identity", "Transpose"].contains($0) }
            let shown = ops.isEmpty ? weight.through : ops
            return
                "weight \(weight.origin) reaches the node through \(shown.joined(separator: ", ")) (only Identity and 2-D Transpose are followed)"
        }
        if node.opType != "Conv", let left = storedOrigin(node.inputs[0]), storedOrigin(node.inputs[1]) == nil {
            return
                "the constant \(left.origin) is the left operand (input 0); only a constant right operand is projected"
        }
        return nil
    }

    /// A node other than the layer's own uses and its Identity/Transpose chain that reads the weight.
    private static func otherReader(of chain: Set<String>, layer: WeightLayer, graph: Graph) -> String? {
        let uses = Set(layer.uses.map(\.nodeIndex))
        for (index, node) in graph.nodes.enumerated() where !uses.contains(index) {
            let readsWeight = node.inputs.contains { chain.contains($0) }
            let isChainLink =
                node.outputs.contains { chain.contains($0) } && ["Identity", "Transpose"].contains(node.opType)
            if readsWeight && !isChainLink {
                return node.name.isEmpty ? "a \(node.opType) node" : "\(node.opType) node \(node.name)"
            }
        }
        return nil
    }

    /// The classifier layer: the last weight layer, when it is a single dense node reading its input's
    /// last axis. Its input is the penultimate features the probe reads and the erasure method refits on.
    public static func classifierHead(of layers: [WeightLayer]) -> WeightLayer? {
        guard let head = layers.last, !head.isConvolution, head.uses.count == 1, case .lastAxis = head.uses[0].rows
        else { return nil }
        return head
    }

    /// The stored tensor of a layer's weight.
    public static func weightTensor(of layer: WeightLayer, in graph: Graph) -> Tensor? {
        switch layer.source {
        case .initializer(let name): graph.initializer(named: name)
        case .constantNode(let index, _):
            index < graph.nodes.count ? graph.nodes[index].attribute("value")?.tensorValue : nil
        }
    }

    struct Reason: Error { var text: String }

    struct Constant {
        var source: WeightSource
        var tensor: Tensor
        /// True when an odd number of 2-D Transposes sit between the stored tensor and the node.
        var transposed: Bool
        /// Values from the node's input back to the stored tensor (Identity/Transpose outputs and the source).
        var chain: [String]
    }

    static func resolveConstant(
        _ value: String, graph: Graph, producers: [String: Int], initializers: [String: Tensor]
    ) -> Constant? {
        var name = value
        var transposed = false
        var chain: [String] = []
        for _ in 0..<64 {
            chain.append(name)
            if let tensor = initializers[name], producers[name] == nil {
                return tensor.dtype.isFloatingPoint
                    ? Constant(source: .initializer(name), tensor: tensor, transposed: transposed, chain: chain) : nil
            }
            guard let index = producers[name] else { return nil }
            let node = graph.nodes[index]
            guard node.domain.isEmpty || node.domain == "ai.onnx" else { return nil }
            switch node.opType {
            case "Identity":
                guard let input = node.inputs.first, !input.isEmpty else { return nil }
                name = input
            case "Transpose":
                guard let input = node.inputs.first, !input.isEmpty else { return nil }
                let perm = node.attribute("perm")?.intsValue
                guard perm == nil || perm! == [1, 0] else { return nil }
                // A default Transpose reverses all axes; only 2-D weights are layers, checked by the callers.
                transposed.toggle()
                name = input
            case "Constant":
                guard let tensor = node.attribute("value")?.tensorValue, tensor.dtype.isFloatingPoint else {
                    return nil
                }
                return Constant(
                    source: .constantNode(index: index, output: name), tensor: tensor, transposed: transposed,
                    chain: chain)
            default:
                return nil
            }
        }
        return nil
    }

    private static func convLayer(_ node: Node, _ constant: Constant) -> Result<WeightLayer, Reason> {
        let shape = constant.tensor.shape
        guard !constant.transposed else {
            return .failure(Reason(text: "Conv weight reaches the node through a Transpose"))
        }
        guard shape.count == 3 || shape.count == 4 else {
            return .failure(Reason(text: "only 1-D and 2-D convolutions are projected (weight \(shape))"))
        }
        let spatial = shape.count - 2
        func pair(_ name: String, _ fallback: Int) -> [Int]? {
            guard let values = node.attribute(name)?.intsValue else { return [fallback, fallback] }
            guard values.count == spatial else { return nil }
            return spatial == 1 ? [fallback, values[0]] : values
        }
        let kernel = spatial == 1 ? [1, shape[2]] : [shape[2], shape[3]]
        if let declared = node.attribute("kernel_shape")?.intsValue, declared != Array(shape.dropFirst(2)) {
            return .failure(Reason(text: "kernel_shape \(declared) disagrees with weight \(shape)"))
        }
        guard let strides = pair("strides", 1), let dilations = pair("dilations", 1),
            strides.allSatisfy({ $0 > 0 }), dilations.allSatisfy({ $0 > 0 })
        else {
            return .failure(Reason(text: "invalid strides or dilations"))
        }
        var pads = [0, 0, 0, 0]
        if let declared = node.attribute("pads")?.intsValue {
            guard declared.count == 2 * spatial, declared.allSatisfy({ $0 >= 0 }) else {
                return .failure(Reason(text: "invalid pads \(declared)"))
            }
            pads = spatial == 1 ? [0, declared[0], 0, declared[1]] : declared
        }
        let autoPad = node.attribute("auto_pad")?.stringValue ?? "NOTSET"
        guard ["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"].contains(autoPad) else {
            return .failure(Reason(text: "unknown auto_pad \(autoPad)"))
        }
        let group = node.attribute("group")?.intValue ?? 1
        guard group >= 1, shape[0] % group == 0 else {
            return .failure(Reason(text: "group \(group) does not divide \(shape[0]) output channels"))
        }
        let geometry = ConvGeometry(
            kernel: kernel, strides: strides, dilations: dilations, pads: pads, autoPad: autoPad, group: group)
        let d = shape.dropFirst().reduce(1, *)
        return .success(
            WeightLayer(
                name: constant.source.name, source: constant.source, shape: shape, dtype: constant.tensor.dtype,
                orientation: .outputByInput, groups: group, inputDimension: d, outputDimension: shape[0],
                uses: [
                    LayerUse(
                        node: node.name, nodeIndex: 0, isNamed: true, opType: node.opType, input: 0,
                        rows: .convolution(geometry))
                ]))
    }

    private static func gemmLayer(_ node: Node, _ constant: Constant) -> Result<WeightLayer, Reason> {
        let shape = constant.tensor.shape
        guard shape.count == 2 else { return .failure(Reason(text: "Gemm weight of rank \(shape.count)")) }
        let transB = (node.attribute("transB")?.intValue ?? 0) != 0
        let transA = (node.attribute("transA")?.intValue ?? 0) != 0
        // The stored tensor is `O × d` when exactly one of transB and a Transpose node flips `d × O`.
        let orientation: WeightOrientation = (transB != constant.transposed) ? .outputByInput : .inputByOutput
        return .success(denseLayer(node, constant, orientation: orientation, rows: transA ? .columns : .lastAxis))
    }

    private static func matMulLayer(_ node: Node, _ constant: Constant) -> Result<WeightLayer, Reason> {
        let shape = constant.tensor.shape
        guard shape.count == 2 else { return .failure(Reason(text: "MatMul weight of rank \(shape.count)")) }
        return .success(
            denseLayer(
                node, constant, orientation: constant.transposed ? .outputByInput : .inputByOutput, rows: .lastAxis))
    }

    private static func denseLayer(
        _ node: Node, _ constant: Constant, orientation: WeightOrientation, rows: LayerUse.Rows
    ) -> WeightLayer {
        let shape = constant.tensor.shape
        let (d, o) = orientation == .outputByInput ? (shape[1], shape[0]) : (shape[0], shape[1])
        return WeightLayer(
            name: constant.source.name, source: constant.source, shape: shape, dtype: constant.tensor.dtype,
            orientation: orientation, groups: 1, inputDimension: d, outputDimension: o,
            uses: [LayerUse(node: node.name, nodeIndex: 0, isNamed: true, opType: node.opType, input: 0, rows: rows)])
    }
}

/// `--layers`: comma-separated patterns; `*` and `?` are wildcards, a pattern without them matches
/// any name containing it. A layer is kept when a pattern matches its weight's name or one of its nodes.
public struct LayerFilter: Sendable, Hashable {
    public var patterns: [String]

    public init(patterns: [String]) { self.patterns = patterns.filter { !$0.isEmpty } }
    public init(_ list: String) { self.init(patterns: list.split(separator: ",").map { $0.trimmingCharacters() }) }

    public func matches(_ layer: WeightLayer) -> Bool {
        patterns.isEmpty
            || ([layer.name] + layer.nodeNames).contains { name in patterns.contains { LayerFilter.match($0, name) } }
    }

    static func match(_ pattern: String, _ name: String) -> Bool {
        guard pattern.contains("*") || pattern.contains("?") else { return name.contains(pattern) }
        return glob(Array(pattern.unicodeScalars), Array(name.unicodeScalars))
    }

    private static func glob(_ p: [Unicode.Scalar], _ s: [Unicode.Scalar]) -> Bool {
        var pi = 0, si = 0, starP = -1, starS = 0
        while si < s.count {
            if pi < p.count, p[pi] == "?" || p[pi] == s[si] {
                pi += 1; si += 1
            } else if pi < p.count, p[pi] == "*" {
                starP = pi; starS = si; pi += 1
            } else if starP >= 0 {
                pi = starP + 1; starS += 1; si = starS
            } else {
                return false
            }
        }
        while pi < p.count, p[pi] == "*" { pi += 1 }
        return pi == p.count
    }
}

extension Substring {
    fileprivate func trimmingCharacters() -> String {
        String(self.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
