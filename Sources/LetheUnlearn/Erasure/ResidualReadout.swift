import Foundation
import LetheCore
import LetheIR

/// Where a transformer's head reads its input: one token of the residual stream, through a final
/// LayerNormalization, right after the last layer that writes into the stream:
///
///     r = residual + writer(h)  →  LayerNormalization(γ, β)  →  Gather(token, axis 1)  →  head
///
/// Erasing the layers' inputs leaves the class in the residual stream: what the first blocks wrote
/// reaches the head past every later layer. Here the head's input itself is made free of the forget
/// concept (`erase`): the writer is refit so that, at the read token, the normalised stream is the
/// LEACE-erased one. The writer's other tokens are read by nothing after it, so the fit needs only the
/// read token's rows.
struct ResidualReadout {
    /// The last layer before the norm: a MatMul (with its bias Add, if any) on `[N, T, d]` rows.
    let writer: WeightLayer
    /// The writer's input `h` and the stream `residual` its output is added to, by the Add node at
    /// index `stream`.
    let writerInput: String
    let residual: String
    let stream: Int
    /// The token the head reads.
    let token: Int
    let scale: [Double]
    let shift: [Double]
    let epsilon: Double

    /// The readout of `head` in `graph`, when the graph has exactly that shape and nothing else reads
    /// the values along it; `layers` are the candidates for the writer.
    static func find(head: WeightLayer, layers: [WeightLayer], graph: Graph) -> ResidualReadout? {
        guard head.uses.count == 1, let headUse = head.uses.first, headUse.nodeIndex < graph.nodes.count else {
            return nil
        }
        let links = GraphLinks(graph)
        let producers = links.producers, readers = links.readers, initializers = links.initializers
        let outputs = Set(graph.outputs.map(\.name))
        /// The node making `value`, when it is the only reader of its output and no graph output.
        func soleProducer(of value: String, readBy reader: Int) -> Node? {
            guard let index = producers[value], readers[value] == [reader], !outputs.contains(value) else { return nil }
            return graph.nodes[index]
        }
        func constant(_ name: String) -> Tensor? {
            if let tensor = initializers[name], producers[name] == nil { return tensor }
            guard let index = producers[name], graph.nodes[index].opType == "Constant" else { return nil }
            return graph.nodes[index].attribute("value")?.tensorValue
        }
        let headInput = graph.nodes[headUse.nodeIndex].inputs[headUse.input]
        guard let gather = soleProducer(of: headInput, readBy: headUse.nodeIndex), gather.opType == "Gather",
            gather.inputs.count == 2, (gather.attribute("axis")?.intValue ?? 0) == 1,
            let index = constant(gather.inputs[1]), index.rank == 0, !index.dtype.isFloatingPoint,
            let token = index.doubleValues().first.map({ Int($0) }), token >= 0
        else { return nil }
        guard let gatherIndex = producers[headInput],
            let norm = soleProducer(of: gather.inputs[0], readBy: gatherIndex), norm.opType == "LayerNormalization",
            norm.inputs.count >= 2, (norm.attribute("axis")?.intValue ?? -1) == -1,
            let scale = constant(norm.inputs[1])?.doubleValues()
        else { return nil }
        let shift =
            norm.inputs.count >= 3 && !norm.inputs[2].isEmpty
            ? constant(norm.inputs[2])?.doubleValues() : [Double](repeating: 0, count: scale.count)
        guard let shift, shift.count == scale.count, let normIndex = producers[gather.inputs[0]],
            let add = soleProducer(of: norm.inputs[0], readBy: normIndex), add.opType == "Add", add.inputs.count == 2,
            let addIndex = producers[norm.inputs[0]]
        else { return nil }
        for writer in layers where writer.groups == 1 && writer.uses.count == 1 && writer.outputDimension == scale.count
        {
            let use = writer.uses[0]
            guard case .lastAxis = use.rows, use.nodeIndex < graph.nodes.count else { continue }
            let node = graph.nodes[use.nodeIndex]
            guard node.opType == "MatMul", use.input == 0, let product = node.outputs.first else { continue }
            // The writer's output: its bias Add when it has one, else the product itself.
            var written = product
            if LayerBias.find(for: writer, in: graph, links: links) != nil {
                guard readers[product]?.count == 1, let biasAdd = readers[product]?.first,
                    let out = graph.nodes[biasAdd].outputs.first
                else { continue }
                written = out
            }
            guard readers[written] == [addIndex], !outputs.contains(written),
                let position = add.inputs.firstIndex(of: written)
            else { continue }
            return ResidualReadout(
                writer: writer, writerInput: node.inputs[0], residual: add.inputs[1 - position], stream: addIndex,
                token: token,
                scale: scale, shift: shift, epsilon: Double(norm.attribute("epsilon")?.floatValue ?? 1e-5))
        }
        return nil
    }

    /// The read token's rows of a `[N, T, C]` value, row-major `N × C`.
    func tokenRows(of value: Tensor) throws -> [Double] {
        guard value.rank == 3, token < value.shape[1] else {
            throw StatisticsError(
                "the head reads token \(token) of a \(value.shape) value, not of [samples, tokens, channels]")
        }
        let tokens = value.shape[1], width = value.shape[2], samples = value.shape[0]
        let floats = value.dtype == .float32 ? value : value.convertedFloatingPoint(to: .float32)
        var rows = [Double](repeating: 0, count: samples * width)
        // Only the read token's rows, not the whole [samples, tokens, width] value.
        floats.withUnsafeBufferPointer(of: Float.self) { p in
            for sample in 0..<samples {
                let start = (sample * tokens + token) * width
                for i in 0..<width { rows[sample * width + i] = Double(p[start + i]) }
            }
        }
        return rows
    }

    /// The read token's rows of the writer's input and of the stream, running `executor` on `samples`.
    func tokenRows(
        running executor: any ModelExecutor, on samples: SampleSet, graph: Graph, batchSize: Int
    ) throws -> (h: [Double], residual: [Double]) {
        // Taps fire in batch order, possibly on the runtime's threads.
        final class Rows: @unchecked Sendable {
            let lock = NSLock()
            var h: [Double] = [], residual: [Double] = []
            func add(h more: [Double]) { lock.lock(); h += more; lock.unlock() }
            func add(residual more: [Double]) { lock.lock(); residual += more; lock.unlock() }
        }
        let rows = Rows()
        let use = writer.uses[0]
        let add = stream
        guard add < graph.nodes.count, let input = graph.nodes[add].inputs.firstIndex(of: residual) else {
            throw StatisticsError("the stream \(residual) is not read by node \(add)")
        }
        let taps = [
            InputTap(node: use.isNamed ? use.node : "", nodeIndex: use.nodeIndex, input: use.input) {
                rows.add(h: try self.tokenRows(of: $0))
            },
            InputTap(node: graph.nodes[add].name, nodeIndex: add, input: input) {
                rows.add(residual: try self.tokenRows(of: $0))
            }
        ]
        try executor.forEachBatch(of: samples, batchSize: batchSize, taps: taps) { _, _ in }
        return (rows.h, rows.residual)
    }

    /// The writer's weight (`D × d`, acting as `W·h`) and bias refit so that the normalised stream at
    /// the read token has the forget concept erased: on rows `h` (`n × d`) and `residual` (`n × D`),
    /// with `isForget` per row, the standardised rows `x̂` are LEACE-erased for the concept "forget
    /// sample" (`x̂' = x̂ − A(x̂ − μ)`, rank one: the class-conditional means become equal), mapped back
    /// with each row's own mean and spread, and the writer is refit by ridge toward the outputs that
    /// give them, pulled toward its current weights.
    func erase(
        h: [Double], residual: [Double], rows n: Int, isForget: [Bool], weight: [Double], bias: [Double]?,
        ridge: Double
    ) throws -> (weight: [Double], bias: [Double]?) {
        let d = writer.inputDimension, width = scale.count
        precondition(
            h.count == n * d && residual.count == n * width && isForget.count == n && weight.count == width * d)
        var stream = HeadRepair.logits(features: h, rows: n, dimension: d, weight: weight, bias: bias, classes: width)
        for i in 0..<(n * width) { stream[i] += residual[i] }
        // LEACE on the norm's standardised rows x̂ = (r − mean)/spread: its scale and shift are affine,
        // so equal means there are equal means in the head's input; and x̂'s rows all sum to zero, so
        // the erased direction does too and the norm's re-centring leaves it be.
        var standardised = stream
        var means = [Double](repeating: 0, count: n), spreads = [Double](repeating: 1, count: n)
        for r in 0..<n {
            let row = stream[(r * width)..<((r + 1) * width)]
            let mean = row.reduce(0, +) / Double(width)
            let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(width)
            means[r] = mean
            spreads[r] = (variance + epsilon).squareRoot()
            for i in 0..<width { standardised[r * width + i] = (stream[r * width + i] - mean) / spreads[r] }
        }
        // One erasure, not repeated until the means also meet after the norm's re-scaling: on the
        // sample ViT, repeating it (the rows' leftover gap after the norm goes to nothing in about ten
        // rounds) cost up to 0.7 points of retain accuracy for no gain in forgetting.
        guard let eraser = try ConceptEraser(rows: standardised, count: n, dimension: width, concept: isForget) else {
            return (weight, bias)
        }
        var erased = standardised
        for r in 0..<n {
            let moved = eraser.apply(Array(standardised[(r * width)..<((r + 1) * width)]))
            for i in 0..<width { erased[r * width + i] = moved[i] }
        }
        var targets = [Double](repeating: 0, count: n * width)
        for r in 0..<n {
            for i in 0..<width {
                targets[r * width + i] = means[r] + spreads[r] * erased[r * width + i] - residual[r * width + i]
            }
        }
        return try HeadRepair.refit(
            features: h, rows: n, dimension: d, targets: targets, classes: width, withBias: bias != nil,
            ridge: ridge, prior: (weight, bias))
    }
}

/// LEACE for a binary concept (Belrose et al. 2023): `x' = x − A(x − μ)` with `A = W⁺ u uᵀ W / ‖u‖²`,
/// `W = Σ^{-1/2}` on the kept spectrum and `u = W · Cov(x, z)`. Afterwards the concept's two
/// class-conditional means are equal, and no linear classifier beats the constant one at telling them apart.
struct ConceptEraser {
    let mean: [Double]
    /// `A = p qᵀ`: `p = W⁺u`, `q = W u / ‖u‖²`.
    let p: [Double]
    let q: [Double]

    /// Nil when the concept does not vary or does not move the rows.
    init?(rows x: [Double], count n: Int, dimension d: Int, concept: [Bool]) throws {
        let positives = concept.filter { $0 }.count
        guard n > 1, positives > 0, positives < n else { return nil }
        var mean = [Double](repeating: 0, count: d)
        for r in 0..<n { for i in 0..<d { mean[i] += x[r * d + i] } }
        for i in 0..<d { mean[i] /= Double(n) }
        var centred = x
        for r in 0..<n { for i in 0..<d { centred[r * d + i] -= mean[i] } }
        var covariance = [Double](repeating: 0, count: d * d)
        LinearAlgebra.multiply(
            centred, transposeA: true, centred, into: &covariance, m: d, n: d, k: n, alpha: 1 / Double(n))
        let share = Double(positives) / Double(n)
        var cross = [Double](repeating: 0, count: d)
        for r in 0..<n {
            let z = (concept[r] ? 1 : 0) - share
            for i in 0..<d { cross[i] += centred[r * d + i] * z / Double(n) }
        }
        let (values, vectors) = try LinearAlgebra.symmetricEigen(covariance, dimension: d)
        let floor = (values.last ?? 0) * 1e-8
        // W·c and W⁺·c through the eigenbasis: coordinates scaled by λ^{∓1/2} on the kept spectrum.
        func apply(_ v: [Double], power: Double) -> [Double] {
            var result = [Double](repeating: 0, count: d)
            for j in 0..<d where values[j] > floor && values[j] > 0 {
                var coordinate = 0.0
                for i in 0..<d { coordinate += vectors[i * d + j] * v[i] }
                coordinate *= pow(values[j], power)
                for i in 0..<d { result[i] += vectors[i * d + j] * coordinate }
            }
            return result
        }
        let u = apply(cross, power: -0.5)
        let norm = u.reduce(0) { $0 + $1 * $1 }
        guard norm > 0 else { return nil }
        self.mean = mean
        p = apply(u, power: 0.5)
        q = apply(u, power: -0.5).map { $0 / norm }
    }

    func apply(_ x: [Double]) -> [Double] {
        var dot = 0.0
        for i in 0..<x.count { dot += q[i] * (x[i] - mean[i]) }
        return (0..<x.count).map { x[$0] - p[$0] * dot }
    }
}
