/// Directions of a layer's input that carry the forget classes beyond their mean: the leading
/// solutions of `G_f v = κ G_r v` (second moments per row, forget over retain), where forget rows
/// have the most energy relative to retain rows — the directions whose removal costs retain rows
/// the least for what it takes from forget rows.
enum ConceptDirections {
    static func forgetSpecific(statistics: LayerStatistics, group g: Int, count k: Int, ridge: Double = 1e-3) throws -> [[Double]] {
        let d = statistics.dimension
        guard k > 0, statistics.forgetRows > 0, statistics.retainRows > 0 else { return [] }
        let a = statistics.forget[g].map { $0 / Double(statistics.forgetRows) }
        var b = statistics.retain[g].map { $0 / Double(statistics.retainRows) }
        var trace = 0.0
        for i in 0..<d { trace += b[i * d + i] }
        let shift = ridge * max(trace / Double(d), .leastNormalMagnitude)
        for i in 0..<d { b[i * d + i] += shift }
        let (_, vectors) = try LinearAlgebra.generalizedSymmetricEigen(a, b, dimension: d)
        return (0..<min(k, d)).map { j in
            let column = d - 1 - j
            return (0..<d).map { vectors[$0 * d + column] }
        }
    }
}
