import LetheCore

/// One weight layer's input statistics: `G = Σ x xᵀ` (float64, not mean-centred) over the retain
/// rows and over the forget rows, one matrix per convolution group.
public struct LayerStatistics: Sendable {
    public var layer: String
    public var groups: Int
    public var dimension: Int
    /// Per group, row-major `d × d`, symmetric.
    public var retain: [[Double]]
    public var forget: [[Double]]
    /// Per group, `Σ x` over the same rows (the erasure method's first moments); empty when a
    /// statistics file written before they were recorded was loaded.
    public var retainSum: [[Double]] = []
    public var forgetSum: [[Double]] = []
    /// Rows accumulated (per group: every group sees the same positions).
    public var retainRows: Int
    public var forgetRows: Int
    /// Per group, the rows themselves when there were fewer than `dimension` (kept in memory only, not
    /// saved: they make the eigen-decomposition cheaper, `G` stays the statistic).
    var retainRowData: [[Float]?] = []
    var forgetRowData: [[Float]?] = []

    public init(layer: String, groups: Int, dimension: Int) {
        self.layer = layer
        self.groups = groups
        self.dimension = dimension
        let zero = [Double](repeating: 0, count: dimension * dimension)
        retain = Array(repeating: zero, count: groups)
        forget = Array(repeating: zero, count: groups)
        retainSum = Array(repeating: [Double](repeating: 0, count: dimension), count: groups)
        forgetSum = retainSum
        retainRows = 0
        forgetRows = 0
    }

    /// Row counts only, for the report of a run that kept no matrices (`StreamedProjection`).
    init(counting layer: String, groups: Int, dimension: Int, retainRows: Int, forgetRows: Int) {
        self.layer = layer
        self.groups = groups
        self.dimension = dimension
        retain = []
        forget = []
        self.retainRows = retainRows
        self.forgetRows = forgetRows
    }

    /// Adds another shard's statistics of the same layer (Grams add up exactly).
    public mutating func add(_ other: LayerStatistics) throws {
        guard other.groups == groups, other.dimension == dimension else {
            throw StatisticsError(
                "layer \(layer): statistics of \(other.groups) group(s) of size \(other.dimension) cannot be added to \(groups) of size \(dimension)"
            )
        }
        retainRowData = []
        forgetRowData = []
        let haveSums = retainSum.count == groups && other.retainSum.count == groups
        if !haveSums { retainSum = []; forgetSum = [] }
        for g in 0..<groups {
            if haveSums {
                for i in 0..<dimension {
                    retainSum[g][i] += other.retainSum[g][i]
                    forgetSum[g][i] += other.forgetSum[g][i]
                }
            }
            for i in 0..<retain[g].count {
                retain[g][i] += other.retain[g][i]
                forget[g][i] += other.forget[g][i]
            }
        }
        retainRows += other.retainRows
        forgetRows += other.forgetRows
    }
}

/// Statistics of every weight layer, as saved by `lethe stats` and reused by `lethe unlearn --stats`.
///
/// File form (safetensors): one F64 tensor `<layer>/retain` and one `<layer>/forget` per layer, of
/// shape `d × d` (or `groups × d × d`), and row counts in the metadata as `<layer>/retain_rows`,
/// `<layer>/forget_rows`; `lethe.statistics` marks the file.
public struct StatisticsSet: Sendable {
    /// Layers in discovery order.
    public private(set) var layers: [LayerStatistics]
    /// What the statistics were collected from (nil for files written before it was recorded).
    public var provenance: StatisticsProvenance?

    public init(layers: [LayerStatistics] = []) { self.layers = layers }

    public subscript(layer: String) -> LayerStatistics? { layers.first { $0.layer == layer } }

    /// One side's statistics per group, eigen-decomposed (`FeatureSpace`) or kept for one solve
    /// (`ResolventSpace`): from the kept rows when there were fewer rows than dimensions, else from `G`.
    func spaces(of layer: LayerStatistics, forget: Bool, decompose: Bool = true) throws -> [any InputSpace] {
        let grams = forget ? layer.forget : layer.retain
        let rows = forget ? layer.forgetRowData : layer.retainRowData
        let count = forget ? layer.forgetRows : layer.retainRows
        return try (0..<layer.groups).map { g in
            if g < rows.count, let data = rows[g], count > 0, data.count == count * layer.dimension {
                return decompose
                    ? try FeatureSpace(rows: data, count: count, dimension: layer.dimension)
                    : try ResolventSpace(rows: data, count: count, dimension: layer.dimension)
            }
            return decompose
                ? try FeatureSpace(gram: grams[g], dimension: layer.dimension)
                : try ResolventSpace(gram: grams[g], dimension: layer.dimension)
        }
    }

    /// Adds a layer, or adds into the layer of the same name.
    public mutating func merge(_ layer: LayerStatistics) throws {
        if let index = layers.firstIndex(where: { $0.layer == layer.layer }) {
            try layers[index].add(layer)
        } else {
            layers.append(layer)
        }
    }

    /// Adds every layer of `other` (shards of the same model add up).
    public mutating func merge(_ other: StatisticsSet) throws {
        if let mine = provenance, let theirs = other.provenance, let reason = theirs.mismatch(with: mine) {
            throw StatisticsError("statistics \(reason) than the files before them")
        }
        if layers.isEmpty { provenance = other.provenance }
        for layer in other.layers { try merge(layer) }
    }

    public static let formatKey = "lethe.statistics"
    public static let formatVersion = "1"

    /// Tensors and metadata to save.
    public func fileContents() -> (tensors: [(name: String, tensor: Tensor)], metadata: [(key: String, value: String)])
    {
        var tensors: [(name: String, tensor: Tensor)] = []
        var metadata: [(key: String, value: String)] = [(StatisticsSet.formatKey, StatisticsSet.formatVersion)]
        metadata += provenance?.metadata ?? []
        for layer in layers {
            let shape =
                layer.groups == 1
                ? [layer.dimension, layer.dimension] : [layer.groups, layer.dimension, layer.dimension]
            tensors.append(("\(layer.layer)/retain", Tensor(shape: shape, values: layer.retain.flatMap { $0 })))
            tensors.append(("\(layer.layer)/forget", Tensor(shape: shape, values: layer.forget.flatMap { $0 })))
            if layer.retainSum.count == layer.groups, layer.forgetSum.count == layer.groups {
                let sumShape = layer.groups == 1 ? [layer.dimension] : [layer.groups, layer.dimension]
                tensors.append(
                    ("\(layer.layer)/retain_sum", Tensor(shape: sumShape, values: layer.retainSum.flatMap { $0 })))
                tensors.append(
                    ("\(layer.layer)/forget_sum", Tensor(shape: sumShape, values: layer.forgetSum.flatMap { $0 })))
            }
            metadata.append(("\(layer.layer)/retain_rows", String(layer.retainRows)))
            metadata.append(("\(layer.layer)/forget_rows", String(layer.forgetRows)))
        }
        return (tensors, metadata)
    }

    /// Rebuilds a set from a statistics file's tensors and metadata, validating names, shapes and counts.
    public init(tensors: [(name: String, tensor: Tensor)], metadata: [(key: String, value: String)]) throws {
        let meta = Dictionary(metadata.map { ($0.key, $0.value) }, uniquingKeysWith: { first, _ in first })
        guard meta[StatisticsSet.formatKey] != nil else {
            throw StatisticsError("not a Lethe statistics file (no \(StatisticsSet.formatKey) metadata)")
        }
        provenance = try StatisticsProvenance(metadata: meta)
        let byName = Dictionary(tensors.map { ($0.name, $0.tensor) }, uniquingKeysWith: { first, _ in first })
        var names: [String] = []
        for (name, _) in tensors {
            if name.hasSuffix("/retain") {
                names.append(String(name.dropLast("/retain".count)))
            } else if name.hasSuffix("/retain_sum") || name.hasSuffix("/forget_sum") {
                continue
            } else if name.hasSuffix("/forget") {
                guard byName[String(name.dropLast("/forget".count)) + "/retain"] != nil else {
                    throw StatisticsError(
                        "layer \(name.dropLast("/forget".count)): missing \(name.dropLast("/forget".count))/retain")
                }
            } else {
                throw StatisticsError("tensor \(name) is not a layer's /retain or /forget statistics")
            }
        }
        var layers: [LayerStatistics] = []
        for name in names {
            guard let retain = byName["\(name)/retain"], let forget = byName["\(name)/forget"] else {
                throw StatisticsError("layer \(name): missing \(name)/forget")
            }
            guard retain.dtype == .float64, forget.dtype == .float64, retain.shape == forget.shape,
                retain.rank == 2 || retain.rank == 3, retain.shape[retain.rank - 1] == retain.shape[retain.rank - 2]
            else {
                throw StatisticsError(
                    "layer \(name): statistics must be F64 of shape d×d or groups×d×d, found \(retain.dtype.shortName) \(retain.shape) and \(forget.dtype.shortName) \(forget.shape)"
                )
            }
            let d = retain.shape[retain.rank - 1]
            let groups = retain.rank == 3 ? retain.shape[0] : 1
            guard groups >= 1, d >= 1 else { throw StatisticsError("layer \(name): empty statistics \(retain.shape)") }
            guard let retainRows = meta["\(name)/retain_rows"].flatMap({ Int($0) }), retainRows >= 0,
                let forgetRows = meta["\(name)/forget_rows"].flatMap({ Int($0) }), forgetRows >= 0
            else {
                throw StatisticsError("layer \(name): missing or invalid row counts in metadata")
            }
            var layer = LayerStatistics(layer: name, groups: groups, dimension: d)
            let r = retain.doubleValues(), f = forget.doubleValues()
            guard r.allSatisfy(\.isFinite), f.allSatisfy(\.isFinite) else {
                throw StatisticsError("layer \(name): non-finite statistics")
            }
            let size = d * d
            for g in 0..<groups {
                layer.retain[g] = Array(r[(g * size)..<((g + 1) * size)])
                layer.forget[g] = Array(f[(g * size)..<((g + 1) * size)])
            }
            layer.retainRows = retainRows
            layer.forgetRows = forgetRows
            if let retainSum = byName["\(name)/retain_sum"], let forgetSum = byName["\(name)/forget_sum"] {
                let sumShape = groups == 1 ? [d] : [groups, d]
                guard retainSum.dtype == .float64, forgetSum.dtype == .float64, retainSum.shape == sumShape,
                    forgetSum.shape == sumShape
                else {
                    throw StatisticsError("layer \(name): row sums must be F64 of shape \(sumShape)")
                }
                let rs = retainSum.doubleValues(), fs = forgetSum.doubleValues()
                guard rs.allSatisfy(\.isFinite), fs.allSatisfy(\.isFinite) else {
                    throw StatisticsError("layer \(name): non-finite row sums")
                }
                layer.retainSum = (0..<groups).map { Array(rs[($0 * d)..<(($0 + 1) * d)]) }
                layer.forgetSum = (0..<groups).map { Array(fs[($0 * d)..<(($0 + 1) * d)]) }
            } else {
                layer.retainSum = []
                layer.forgetSum = []
            }
            layers.append(layer)
        }
        self.layers = layers
    }
}

/// Statistics that do not fit the model or each other.
public struct StatisticsError: LetheError {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
