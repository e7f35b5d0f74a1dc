import LetheCore
import LetheIR

/// Condenses a projected layer into the report's per-layer line.
enum LayerSummaryBuilder {
    static let spectrumLength = 64

    static func summary(
        of entry: ProjectionPlan.Entry, statistics: StatisticsSet, patched: Tensor?, model: Model
    ) -> UnlearningReport.Layer {
        var line = summary(of: entry.layer, statistics: statistics, original: entry.original, patched: patched)
        let retain = entry.retainSpaces.first?.energies.reversed().map { $0 } ?? []
        let forget = entry.forgetSpaces.first?.energies.reversed().map { $0 } ?? []
        line.retainSpectrum = Array(retain.prefix(spectrumLength))
        line.forgetSpectrum = Array(forget.prefix(spectrumLength))
        line.retainRank99 = rank(retain, share: 0.99)
        line.forgetRank99 = rank(forget, share: 0.99)
        return line
    }

    /// A layer the erasure method changed (no eigen-spectra: it decomposes nothing).
    static func summary(
        of layer: WeightLayer, statistics: StatisticsSet, original: Model, patched: Tensor?
    ) -> UnlearningReport.Layer {
        summary(
            of: layer, statistics: statistics, original: LayerDiscovery.weightTensor(of: layer, in: original.graph),
            patched: patched)
    }

    /// The line without spectra: what the layer is, the rows it was measured on, how much it moved.
    private static func summary(
        of layer: WeightLayer, statistics: StatisticsSet, original: Tensor?, patched: Tensor?
    ) -> UnlearningReport.Layer {
        let stats = statistics[layer.name]
        var change = 0.0
        if let patched, let original { change = relativeChange(from: original, to: patched) }
        let ops = Set(layer.uses.map(\.opType)).sorted().joined(separator: "+")
        return UnlearningReport.Layer(
            name: layer.name, nodes: layer.nodeNames, kind: ops, orientation: layer.orientation, shape: layer.shape,
            groups: layer.groups, inputDimension: layer.inputDimension, retainRows: stats?.retainRows ?? 0,
            forgetRows: stats?.forgetRows ?? 0, retainSpectrum: [], forgetSpectrum: [], retainRank99: 0,
            forgetRank99: 0, relativeChange: change)
    }

    /// `‖new − old‖_F / ‖old‖_F`.
    static func relativeChange(from old: Tensor, to new: Tensor) -> Double {
        let a = old.doubleValues(), b = new.doubleValues()
        var num = 0.0, den = 0.0
        for i in 0..<min(a.count, b.count) { num += (b[i] - a[i]) * (b[i] - a[i]); den += a[i] * a[i] }
        return den > 0 ? (num / den).squareRoot() : 0
    }

    /// Leading directions needed to reach `share` of the energy (`spectrum` descending, summing to 1).
    static func rank(_ spectrum: [Double], share: Double) -> Int {
        var sum = 0.0
        for (index, value) in spectrum.enumerated() {
            sum += value
            if sum >= share { return index + 1 }
        }
        return spectrum.count
    }
}
