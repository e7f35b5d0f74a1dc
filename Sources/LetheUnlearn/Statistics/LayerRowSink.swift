import Foundation
import LetheCore

/// Receives one tapped activation of a layer's node and turns it into statistics rows.
///
/// Taps may fire on the runtime's threads, so every sink serialises its own accumulation.
final class LayerRowSink: @unchecked Sendable {
    let layer: WeightLayer
    let layerIndex: Int
    let positionCap: Int?
    let seed: UInt64
    private let lock = NSLock()
    private var accumulators: [GramAccumulator]
    /// Images each use has seen in this pass: the runtime may split a batch into chunks, so the
    /// sink counts images itself to give every image its own position draw.
    private var imagesSeen: [Int: Int] = [:]
    var passTag: UInt64 = 0
    /// Images the pass will bring, when known: from the first batch's rows per image the sink then
    /// knows whether the pass reaches `d` rows, and if so keeps none (see `GramAccumulator.expect`).
    var expectedImages: Int?
    private var estimated = false

    init(layer: WeightLayer, layerIndex: Int, positionCap: Int?, seed: UInt64) {
        self.layer = layer
        self.layerIndex = layerIndex
        self.positionCap = positionCap
        self.seed = seed
        self.accumulators = (0..<layer.groups).map { _ in GramAccumulator(dimension: layer.inputDimension) }
    }

    /// Rows accumulated per group.
    var rowCount: Int { accumulators.first?.rowCount ?? 0 }

    /// The finished matrices and row sums, one per group, and the rows when there were fewer than `d`.
    /// Without `gramsOfKeptRows`, a group whose rows were kept gets an empty matrix: its caller works
    /// from the rows and never pays for `G`.
    func grams(gramsOfKeptRows: Bool = true) -> (grams: [[Double]], sums: [[Double]], rows: [[Float]?]) {
        lock.lock(); defer { lock.unlock() }
        let rows = accumulators.map { $0.rowCount > 0 ? $0.keptRows : nil }
        let grams = zip(accumulators, rows).map { accumulator, kept in
            kept != nil && !gramsOfKeptRows ? [] : accumulator.gram()
        }
        return (grams, accumulators.map(\.sums), rows)
    }

    func consume(_ activation: Tensor, use: LayerUse, useIndex: Int) throws {
        lock.lock(); defer { lock.unlock() }
        let values = activation.dtype == .float32 ? activation : activation.convertedFloatingPoint(to: .float32)
        guard values.dtype == .float32 else {
            throw StatisticsError(
                "layer \(layer.name): node \(use.node) input is \(activation.dtype.shortName), not floating point")
        }
        switch use.rows {
        case .convolution(let geometry): try consumePatches(values, geometry: geometry, use: use, useIndex: useIndex)
        case .lastAxis: try consumeVectors(values, use: use, useIndex: useIndex)
        case .columns: try consumeColumns(values, use: use)
        }
        for accumulator in accumulators { accumulator.endBatch() }
    }

    /// Tells the accumulators how many rows the pass will bring, from the first batch's `rows` over
    /// its `images`.
    private func estimateRows(_ rows: Int, images: Int) {
        guard !estimated, let expectedImages, images > 0 else { return }
        estimated = true
        let total = rows / images * expectedImages * layer.uses.count
        for accumulator in accumulators { accumulator.expect(rows: total) }
    }

    private func consumeVectors(_ values: Tensor, use: LayerUse, useIndex: Int) throws {
        let d = layer.inputDimension
        guard values.rank >= 1, values.shape.last == d else {
            throw StatisticsError("layer \(layer.name): node \(use.node) input \(values.shape) does not end in \(d)")
        }
        // A sequence longer than the position cap is sampled like a large feature map: `cap` of its
        // tokens per sequence (a [batch, tokens, d] input; flat [rows, d] inputs keep every row).
        let tokens = values.rank >= 3 ? values.shape[values.rank - 2] : 1
        let sequences = values.rank >= 3 ? values.shape[..<(values.rank - 2)].reduce(1, *) : 0
        let cap = positionCap ?? Int.max
        values.withUnsafeBufferPointer(of: Float.self) { p in
            guard let base = p.baseAddress else { return }
            guard sequences > 0, tokens > cap else {
                if values.rank >= 2 { estimateRows(p.count / d, images: values.shape[0]) }
                accumulators[0].add(rows: base, count: p.count / d)
                return
            }
            let firstSequence = imagesSeen[useIndex, default: 0]
            imagesSeen[useIndex] = firstSequence + sequences
            estimateRows(sequences * cap, images: values.shape[0])
            var chosen: [Int] = []
            chosen.reserveCapacity(sequences * cap)
            for sequence in 0..<sequences {
                chosen += PositionSampler.positions(
                    total: tokens, cap: cap,
                    seed: SplitMix64.combine(
                        seed, passTag, UInt64(layerIndex), UInt64(useIndex), UInt64(firstSequence + sequence)))
            }
            chosen.withUnsafeBufferPointer { positions in
                accumulators[0].appendRows(sequences * cap) { index, row in
                    let sequence = index / cap
                    row.update(from: base + (sequence * tokens + positions[index]) * d, count: d)
                }
            }
        }
    }

    private func consumeColumns(_ values: Tensor, use: LayerUse) throws {
        let d = layer.inputDimension
        guard values.rank == 2, values.shape[0] == d else {
            throw StatisticsError("layer \(layer.name): node \(use.node) input \(values.shape) is not \(d) × M")
        }
        let m = values.shape[1]
        values.withUnsafeBufferPointer(of: Float.self) { p in
            for column in 0..<m {
                accumulators[0].appendRow { row in for i in 0..<d { row[i] = p[i * m + column] } }
            }
        }
    }

    private func consumePatches(_ values: Tensor, geometry: ConvGeometry, use: LayerUse, useIndex: Int) throws {
        guard values.rank == 3 || values.rank == 4 else {
            throw StatisticsError("layer \(layer.name): node \(use.node) input \(values.shape) is not NCW or NCHW")
        }
        let n = values.shape[0], c = values.shape[1]
        let h = values.rank == 4 ? values.shape[2] : 1
        let w = values.shape[values.rank - 1]
        let patches = PatchRows(channels: c, height: h, width: w, geometry: geometry)
        guard c % geometry.group == 0, patches.rowLength == layer.inputDimension else {
            throw StatisticsError(
                "layer \(layer.name): node \(use.node) input has \(c) channels, the weight expects \(layer.inputDimension) values per patch in \(geometry.group) group(s)"
            )
        }
        let imageSize = c * h * w
        let firstImage = imagesSeen[useIndex, default: 0]
        imagesSeen[useIndex] = firstImage + n
        // Every image gets the same number of positions; flat, so the parallel fill touches no array objects.
        let sampled = positionCap.map { patches.positions > $0 } ?? false
        let perImage = sampled ? positionCap! : patches.positions
        guard perImage > 0 else { return }
        estimateRows(n * perImage, images: n)
        var chosen: [Int] = []
        if sampled {
            chosen.reserveCapacity(n * perImage)
            for image in 0..<n {
                chosen += PositionSampler.positions(
                    total: patches.positions, cap: positionCap,
                    seed: SplitMix64.combine(
                        seed, passTag, UInt64(layerIndex), UInt64(useIndex), UInt64(firstImage + image)))
            }
        }
        values.withUnsafeBufferPointer(of: Float.self) { p in
            guard let base = p.baseAddress else { return }
            if !sampled, accumulators.allSatisfy(\.acceptsTransposed) {
                for group in 0..<geometry.group {
                    accumulators[group].addTransposed(items: n, rowsPerItem: perImage) { image, lines, stride in
                        patches.fillLines(lines, lineStride: stride, image: base + image * imageSize, group: group)
                    }
                }
                return
            }
            chosen.withUnsafeBufferPointer { positions in
                for group in 0..<geometry.group {
                    accumulators[group].appendRows(n * perImage) { index, row in
                        let image = index / perImage
                        let position = sampled ? positions[index] : index - image * perImage
                        patches.fill(row: row, image: base + image * imageSize, group: group, position: position)
                    }
                }
            }
        }
    }
}
