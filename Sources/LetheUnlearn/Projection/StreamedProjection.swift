import Foundation
import LetheCore
import LetheRuntime
import LetheIR

/// The projection of DESIGN §4 for one α pair, applied while the statistics are collected so that only
/// one side's matrices are ever held: when the retain pass ends, each layer's `R = W − W M_r` (a weight-
/// sized matrix) replaces its retain matrices; when the forget pass ends, `W_new = W − R M_f`. Both
/// products go through `ResolventSpace`, one Cholesky solve each. The weights are `ProjectionPlan`'s up
/// to a float32 rounding of `R`; what this saves is the other side's matrices (0.7 GB of float64 on
/// ResNet-18 at 224²).
struct StreamedProjection {
    let model: Model
    let layers: [WeightLayer]
    let collector: StatisticsCollector
    let alphaRetain: Double
    let alphaForget: Double

    struct Outcome {
        /// Patched weights, keyed by weight name, each in its original dtype and shape.
        var weights: [String: Tensor]
        /// Row counts per layer (no matrices: none are kept).
        var statistics: StatisticsSet
        /// Time spent in the solves and products, outside the passes.
        var projectionSeconds: Double
    }

    /// `retain` is released when its pass ends: a subset of the user's samples is a copy (135 MB of
    /// ViT-B/16's 900 retain images at 224²) that the forget pass, where the run peaks, has no use for.
    func run(
        executor: any ModelExecutor, retain: consuming SampleSet, forget: SampleSet,
        progress: UnlearningProgress?
    ) throws -> Outcome {
        var projectionSeconds = 0.0
        // Weights stay in their tensors and are widened to float64 one layer at a time: ViT-B/16's
        // would take 690 MB as float64 all at once.
        let tensors = try layers.map { layer -> Tensor in
            guard let tensor = LayerDiscovery.weightTensor(of: layer, in: model.graph) else {
                throw StatisticsError("weight \(layer.name) is not in the model")
            }
            return tensor
        }
        let residuals = try collector.pass(
            executor: executor, samples: retain, tag: 1, phase: "statistics (retain)", progress: progress,
            gramsOfKeptRows: false
        ) { index, result -> (residual: [[Float]], rows: Int) in
            let started = Date()
            defer { projectionSeconds += Date().timeIntervalSince(started) }
            let w = ProjectionPlan.groupWeights(tensors[index], layer: layers[index])
            let rows = result.rows
            let residual = try subtract(w, times: &result, alpha: alphaRetain, from: w, layer: layers[index])
            // R is held in float32 until the forget pass ends: rounding it moves W − R M_f by at most
            // a float32 rounding of W (‖M_f‖ ≤ 1), what storing the patched weight costs anyway.
            return (residual.map { $0.map(Float.init) }, rows)
        }
        _ = consume retain
        // The solves' OpenBLAS workers spin for about 0.1 s after them; stopped first, they neither
        // take a core from what follows nor make every page given back interrupt that core.
        LibraryThreads.stopOpenBLASWorkers()
        HeapPolicy.releaseFreed()
        var statistics = StatisticsSet()
        let patched = try collector.pass(
            executor: executor, samples: forget, tag: 2, phase: "statistics (forget)", progress: progress,
            gramsOfKeptRows: false
        ) { index, result -> Tensor in
            let started = Date()
            defer { projectionSeconds += Date().timeIntervalSince(started) }
            let layer = layers[index]
            try statistics.merge(
                LayerStatistics(
                    counting: layer.name, groups: layer.groups, dimension: layer.inputDimension,
                    retainRows: residuals[index].rows, forgetRows: result.rows))
            let groups = try subtract(
                residuals[index].residual.map { $0.map(Double.init) }, times: &result, alpha: alphaForget,
                from: ProjectionPlan.groupWeights(tensors[index], layer: layer), layer: layer)
            return tensors[index].replacingValues(with: ProjectionPlan.storedOrder(groups, layer: layer))
        }
        LibraryThreads.stopOpenBLASWorkers()
        var byName: [String: Tensor] = [:]
        for (layer, tensor) in zip(layers, patched) { byName[layer.name] = tensor }
        return Outcome(weights: byName, statistics: statistics, projectionSeconds: projectionSeconds)
    }

    /// Per group, `base − A M` for one side's statistics (`M` at `alpha`). Each `G` is taken out of
    /// `result` (left empty) and becomes its own solve's matrix, so no second `d × d` copy is made.
    private func subtract(
        _ a: [[Double]], times result: inout StatisticsCollector.PassResult, alpha: Double,
        from base: [[Double]], layer: WeightLayer
    ) throws -> [[Double]] {
        let d = layer.inputDimension
        let outputs = layer.outputDimension / layer.groups
        var differences: [[Double]] = []
        for g in a.indices {
            var difference = base[g]
            if g < result.rowData.count, let rows = result.rowData[g], result.rows > 0, rows.count == result.rows * d {
                try ResolventSpace(rows: rows, count: result.rows, dimension: d).subtractProjection(
                    of: a[g], outputs: outputs, alpha: alpha, threshold: InputProjection.negligibleScale,
                    from: &difference)
            } else {
                var gram: [Double] = []
                swap(&gram, &result.grams[g])
                try ResolventSpace.subtractProjection(
                    gram: consume gram, dimension: d, of: a[g], outputs: outputs, alpha: alpha, from: &difference)
            }
            differences.append(difference)
        }
        return differences
    }
}
