import LetheCore
import LetheIR

/// The values a model's data flow holds at one point of its graph, for a fixed list of samples,
/// batch by batch.
///
/// The erasure method patches layers in graph order, and a patch changes nothing upstream of its
/// node. Keeping the live values at the last patched node lets each layer's statistics come from
/// running only the nodes since the previous layer, instead of the whole model per layer: one
/// forward pass in all, whatever the number of layers erased.
///
/// Values computed from weights alone (a Transpose of a weight, a shape constant) are never kept:
/// every segment recomputes them from the current weights, so a patched initializer is always seen.
final class ActivationCache {
    /// Why the cache cannot serve a run; the caller falls back to whole-model passes.
    struct Unavailable: Error, CustomStringConvertible {
        var description: String
    }

    let batchSize: Int
    /// Samples cached, in this order.
    let count: Int
    private let flow: DataFlow
    private let budget: Int
    private let makeExecutor: ModelExecutorFactory
    /// Per batch, the live values at `position` by name.
    private var batches: [[String: Tensor]]
    /// Nodes before this position of `flow.order` have run.
    private(set) var position = 0

    /// Caches `samples`' inputs; `budget` bounds the bytes the live values may take at any cut.
    init(
        model: Model, samples: SampleSet, batchSize: Int, budget: Int, makeExecutor: @escaping ModelExecutorFactory
    ) throws {
        flow = try DataFlow(graph: model.graph)
        guard let input = flow.input else { throw Unavailable(description: "the model has no single runtime input") }
        let batchSize = max(1, batchSize)
        self.batchSize = batchSize
        self.budget = budget
        self.makeExecutor = makeExecutor
        count = samples.count
        // One sample's size, not `inputs` (which would decode a lazily read image folder whole).
        let sampleBytes = samples.count > 0 ? samples.batch(0..<1).byteCount : 0
        guard sampleBytes * samples.count <= budget else {
            throw Unavailable(description: "the samples exceed the cache budget")
        }
        batches = stride(from: 0, to: samples.count, by: batchSize).map { start in
            [input: samples.batch(start..<min(samples.count, start + batchSize))]
        }
    }

    /// Runs `model` from the current position up to (not including) the node at `nodeIndex` of
    /// `graph.nodes`. Upstream nodes must be unchanged in `model` since they ran.
    func advance(to nodeIndex: Int, model: Model) throws {
        guard let target = flow.position[nodeIndex] else {
            throw Unavailable(description: "node \(nodeIndex) is not in the graph")
        }
        guard target >= position else { throw Unavailable(description: "the cache is past node \(nodeIndex)") }
        let segment = flow.segment(from: position, to: target)
        defer { position = target }
        guard !segment.outputs.isEmpty else { return }
        let executor = try makeExecutor(model.restricted(to: segment))
        let live = flow.live(at: target)
        var bytes = 0
        for index in batches.indices {
            let feeds = try self.feeds(of: segment, batch: index)
            let produced = try executor.run(feeds: feeds)
            var next: [String: Tensor] = [:]
            for name in live {
                guard let value = produced[name] ?? batches[index][name] else {
                    throw Unavailable(description: "value '\(name)' was not produced")
                }
                next[name] = value
            }
            batches[index] = next
            bytes += next.values.reduce(0) { $0 + $1.byteCount }
            // Project from what has run so far: stop before the whole set has been made.
            if bytes / (index + 1) * batches.count > budget {
                throw Unavailable(description: "the live values would exceed the cache budget")
            }
        }
    }

    /// Runs the rest of `model` from the current position and returns its value `output` (a graph
    /// output), one tensor per cached batch in sample order. The cache holds nothing afterwards.
    func finish(model: Model, output: String) throws -> [Tensor] {
        let end = flow.order.count
        let segment = flow.segment(from: position, to: end, keeping: [output])
        guard segment.outputs.contains(output) else {
            throw Unavailable(description: "output '\(output)' is not made after the cache's position")
        }
        let executor = try makeExecutor(model.restricted(to: segment))
        var values: [Tensor] = []
        for index in batches.indices {
            guard let value = try executor.run(feeds: try feeds(of: segment, batch: index))[output] else {
                throw Unavailable(description: "output '\(output)' was not produced")
            }
            values.append(value)
            batches[index] = [:]
        }
        position = end
        return values
    }

    private func feeds(of segment: DataFlow.Segment, batch index: Int) throws -> [String: Tensor] {
        var feeds: [String: Tensor] = [:]
        for name in segment.inputs {
            guard let value = batches[index][name] else {
                throw Unavailable(description: "value '\(name)' was not kept")
            }
            feeds[name] = value
        }
        return feeds
    }

    /// The value `name` at the current position for the samples at `indices` (positions in the
    /// cached list, repeats allowed), handed to `body` in chunks of at most `batchSize` samples.
    /// The value must hold one row per sample along its first axis.
    func rows(of name: String, at indices: [Int], _ body: (Tensor) throws -> Void) throws {
        var start = 0
        while start < indices.count {
            let chunk = indices[start..<min(indices.count, start + batchSize)]
            var out: Tensor?
            var rowBytes = 0
            for (row, index) in chunk.enumerated() {
                precondition(index >= 0 && index < count)
                let batch = index / batchSize, offset = index % batchSize
                guard let value = batches[batch][name] else {
                    throw Unavailable(description: "value '\(name)' is not kept")
                }
                let rowsInBatch = min(batchSize, count - batch * batchSize)
                guard value.rank >= 1, value.shape[0] == rowsInBatch else {
                    throw Unavailable(description: "value '\(name)' \(value.shape) does not hold one row per sample")
                }
                if out == nil {
                    out = Tensor(zeros: value.dtype, shape: [chunk.count] + value.shape.dropFirst())
                    rowBytes = value.byteCount / rowsInBatch
                }
                guard value.dtype == out!.dtype, value.byteCount / rowsInBatch == rowBytes else {
                    throw Unavailable(description: "value '\(name)' changes shape between batches")
                }
                value.withUnsafeBytes { source in
                    out!.withUnsafeMutableBytes { target in
                        guard rowBytes > 0 else { return }
                        (target.baseAddress! + row * rowBytes).copyMemory(
                            from: source.baseAddress! + offset * rowBytes, byteCount: rowBytes)
                    }
                }
            }
            if let out { try body(out) }
            start += chunk.count
        }
    }
}

/// Which values of a graph depend on its runtime input, in execution order, and what each stretch
/// of that order reads and leaves behind.
struct DataFlow {
    /// The single runtime input, or nil.
    let input: String?
    /// Node indices in execution order.
    let order: [Int]
    /// Each node's position in `order`.
    let position: [Int: Int]
    private let nodes: [Node]
    /// Whether the node at each position reads the runtime input, directly or not.
    private let isData: [Bool]
    /// For each data value, the last position that reads it.
    private let lastRead: [String: Int]
    /// For each data value, the position that makes it (-1 for the input).
    private let madeAt: [String: Int]

    init(graph: Graph) throws {
        if graph.nodes.contains(where: { node in
            node.attributes.contains {
                if case .graph = $0.value { true } else if case .graphs = $0.value { true } else { false }
            }
        }) {
            // A subgraph reads outer values that its node does not list as inputs.
            throw ActivationCache.Unavailable(description: "the graph has subgraphs")
        }
        let inputs = graph.runtimeInputs
        input = inputs.count == 1 ? inputs[0].name : nil
        order = try graph.topologicalOrder()
        var position: [Int: Int] = [:]
        for (p, index) in order.enumerated() { position[index] = p }
        self.position = position
        nodes = graph.nodes
        var data: Set<String> = Set(inputs.map(\.name))
        var isData: [Bool] = []
        var lastRead: [String: Int] = [:]
        var madeAt: [String: Int] = [:]
        for name in data { madeAt[name] = -1 }
        for (p, index) in order.enumerated() {
            let node = graph.nodes[index]
            let reads = node.inputs.filter { data.contains($0) }
            isData.append(!reads.isEmpty)
            guard !reads.isEmpty else { continue }
            for name in reads { lastRead[name] = p }
            for output in node.outputs where !output.isEmpty {
                data.insert(output)
                madeAt[output] = p
            }
        }
        self.isData = isData
        self.lastRead = lastRead
        self.madeAt = madeAt
    }

    /// Data values made before position `cut` and read at or after it, sorted.
    func live(at cut: Int) -> [String] {
        madeAt.compactMap { name, made in made < cut && (lastRead[name] ?? -1) >= cut ? name : nil }.sorted()
    }

    /// The nodes of a stretch (indices into the graph's nodes), the data values they read from before
    /// it, and those they leave for after it.
    typealias Segment = (nodes: [Int], inputs: [String], outputs: [String])

    /// The nodes to run to move from `start` to `end` — the data nodes in between, and every node
    /// computed from weights alone (the runtime folds them and drops those not needed) — and the
    /// data values they read from before `start` and leave for after `end` (or that are `kept`).
    func segment(from start: Int, to end: Int, keeping kept: Set<String> = []) -> Segment {
        guard start < end else { return ([], [], []) }
        var run: [Int] = []
        var reads: Set<String> = []
        var outputs: [String] = []
        for p in 0..<order.count where !isData[p] || (p >= start && p < end) {
            run.append(order[p])
            guard isData[p] else { continue }
            for name in nodes[order[p]].inputs where (madeAt[name] ?? Int.max) < start { reads.insert(name) }
            for name in nodes[order[p]].outputs
            where !name.isEmpty && ((lastRead[name] ?? -1) >= end || kept.contains(name)) {
                outputs.append(name)
            }
        }
        guard run.contains(where: { isData[position[$0]!] }) else { return ([], [], []) }
        return (run, reads.sorted(), outputs)
    }
}

extension Model {
    /// The model with only `segment`'s nodes, fed its inputs and giving its outputs.
    fileprivate func restricted(to segment: DataFlow.Segment) -> Model {
        var graph = graph
        graph.nodes = segment.nodes.map { graph.nodes[$0] }
        graph.inputs = segment.inputs.map { ValueInfo(name: $0) }
        graph.outputs = segment.outputs.map { ValueInfo(name: $0) }
        graph.valueInfos = []
        var model = self
        model.graph = graph
        return model
    }
}
