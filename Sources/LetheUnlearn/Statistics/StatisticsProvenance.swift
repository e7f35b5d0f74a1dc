import LetheCore
import LetheIR

/// What a statistics file was collected from: the model (a hash of the weights the statistics
/// describe), the classes, and the sample settings. `lethe unlearn --stats` refuses a file whose
/// model or classes differ from the run's, since its Grams would describe other rows.
public struct StatisticsProvenance: Sendable, Hashable {
    /// FNV-1a (64-bit) over every layer's name, shape and stored bytes, in discovery order.
    public var modelHash: String
    public var forgetClasses: [Int]
    public var alreadyForgotten: [Int]
    public var samples: Int
    /// Position cap ("all" when none), and the row budget when there was one ("1024, rows 10000").
    public var positions: String
    public var seed: UInt64

    static let keys = (
        model: "lethe.model", forget: "lethe.forget", already: "lethe.already_forgotten",
        samples: "lethe.samples", positions: "lethe.positions", seed: "lethe.seed"
    )

    public init(model: Model, layers: [WeightLayer], configuration: UnlearningConfiguration) {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ bytes: UnsafeRawBufferPointer) {
            for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        }
        for layer in layers {
            Array(layer.name.utf8).withUnsafeBytes(mix)
            layer.shape.withUnsafeBytes(mix)
            LayerDiscovery.weightTensor(of: layer, in: model.graph)?.withUnsafeBytes(mix)
        }
        modelHash = String(hash, radix: 16)
        forgetClasses = configuration.forgetClasses.sorted()
        alreadyForgotten = configuration.alreadyForgotten.sorted()
        samples = configuration.samples
        positions = configuration.positionCap.map(String.init) ?? "all"
        if let budget = configuration.rowBudget { positions += ", rows \(budget)" }
        seed = configuration.seed
    }

    var metadata: [(key: String, value: String)] {
        [
            (Self.keys.model, modelHash), (Self.keys.forget, Self.list(forgetClasses)),
            (Self.keys.already, Self.list(alreadyForgotten)),
            (Self.keys.samples, String(samples)), (Self.keys.positions, positions), (Self.keys.seed, String(seed))
        ]
    }

    /// Reads the provenance from a file's metadata; nil for files written before it was recorded.
    init?(metadata: [String: String]) throws {
        guard let model = metadata[Self.keys.model] else { return nil }
        func classes(_ key: String) throws -> [Int] {
            let text = metadata[key] ?? ""
            guard !text.isEmpty else { return [] }
            let ids = text.split(separator: ",").map { Int($0) }
            guard ids.allSatisfy({ $0 != nil }) else {
                throw StatisticsError("metadata \(key) is not a list of class ids: '\(text)'")
            }
            return ids.map { $0! }
        }
        modelHash = model
        forgetClasses = try classes(Self.keys.forget)
        alreadyForgotten = try classes(Self.keys.already)
        samples = Int(metadata[Self.keys.samples] ?? "") ?? 0
        positions = metadata[Self.keys.positions] ?? ""
        seed = UInt64(metadata[Self.keys.seed] ?? "") ?? 0
    }

    /// Why statistics of `self` cannot serve a run of `other`, or nil when they can.
    func mismatch(with run: StatisticsProvenance) -> String? {
        if modelHash != run.modelHash {
            return "were collected on a different model (weights hash \(modelHash), this model \(run.modelHash))"
        }
        if forgetClasses != run.forgetClasses {
            return
                "were collected to forget class(es) \(Self.list(forgetClasses)), this run forgets \(Self.list(run.forgetClasses))"
        }
        if alreadyForgotten != run.alreadyForgotten {
            return
                "were collected with \(Setting.alreadyForgotten) '\(Self.list(alreadyForgotten))', this run has '\(Self.list(run.alreadyForgotten))'"
        }
        return nil
    }

    private static func list(_ ids: [Int]) -> String { ids.map(String.init).joined(separator: ",") }
}
