/// What an unlearning run did and measured, for `--json` and the HTML report.
public struct UnlearningReport: Sendable, Codable {
    public struct Settings: Sendable, Codable {
        public var forgetClasses: [Int]
        public var alreadyForgotten: [Int]
        public var retainClasses: [Int]
        public var samples: Int
        public var alphaRetain: Double
        public var alphaForget: Double
        public var search: Bool
        /// nil: every output position.
        public var positionCap: Int?
        /// Rows per layer and side the statistics aimed for (`--rows`); nil: no budget.
        public var rowBudget: Int? = nil
        public var seed: UInt64
        public var layerPatterns: [String]
        public var batchSize: Int
        public var threads: Int?
        /// Whether statistics were loaded (`--stats`) rather than collected.
        public var statisticsLoaded: Bool
        /// Passes of the method (the grid, spectra and chosen α are the first pass's; later passes
        /// add a note each).
        public var passes: Int = 1
        public var method: String = UnlearningMethod.published.rawValue
    }

    /// Wall-clock seconds per phase. The erasure method reports its layer erasures as `statistics` and
    /// its head repair as `search`.
    public struct Timings: Sendable, Codable {
        public var statistics: Double = 0
        public var decomposition: Double = 0
        public var search: Double = 0
        public var projection: Double = 0
        public var evaluation: Double = 0
        public var total: Double = 0
    }

    public struct Layer: Sendable, Codable {
        public var name: String
        public var nodes: [String]
        public var kind: String
        public var orientation: WeightOrientation
        public var shape: [Int]
        public var groups: Int
        public var inputDimension: Int
        public var retainRows: Int
        public var forgetRows: Int
        /// Leading normalised eigenvalues `s_i` (descending, first group), at most 64.
        public var retainSpectrum: [Double]
        public var forgetSpectrum: [Double]
        /// Directions needed to hold 99% of each side's energy (first group).
        public var retainRank99: Int
        public var forgetRank99: Int
        /// `‖W_new − W‖_F / ‖W‖_F` at the chosen α.
        public var relativeChange: Double
    }

    public struct GridPoint: Sendable, Codable {
        public var alphaRetain: Double
        public var alphaForget: Double
        public var retainAccuracy: Double?
        public var forgetAccuracy: Double?
        /// `ACC_r · (1 − ACC_f)` on the validation split.
        public var score: Double
    }

    /// One candidate of the head repair, judged on the validation split.
    public struct RepairPoint: Sendable, Codable {
        public var ridge: Double
        public var margin: Double
        public var retainAccuracy: Double?
        public var forgetAccuracy: Double?
    }

    /// A layer the erasure left alone: erasing it would have moved this share of its retain outputs' energy.
    public struct SkippedErasure: Sendable, Codable {
        public var layer: String
        public var distortion: Double
    }

    /// One erasure depth the default method tried, judged on the validation split (after its head repair).
    public struct DepthPoint: Sendable, Codable {
        public var depth: Int
        /// Layers erased at this depth, and those left alone because their erasure moved too much.
        public var layers: [String]
        public var skipped: [SkippedErasure]
        public var retainAccuracy: Double?
        public var forgetAccuracy: Double?
    }

    /// What the erasure method (the default) did: which layers it erased and how the head was repaired.
    public struct Erasure: Sendable, Codable {
        public var erasedLayers: [String]
        /// The last layer writing into the residual stream the head reads, refit so that the head's
        /// input no longer carries the forget classes (`ResidualReadout`); nil when the model has no such readout.
        public var readoutWriter: String?
        public var head: String
        /// Depths tried, in order; the chosen one erased `erasedLayers`.
        public var depths: [DepthPoint]
        /// The original model's validation ACC_r, the reference of the retain budget.
        public var originalValidationRetainAccuracy: Double?
        public var repairGrid: [RepairPoint]
        public var chosenRidge: Double
        public var chosenMargin: Double
        /// The stated rule the choice followed.
        public var rule: String
    }

    /// Linear-probe recovery (DESIGN §4b): a multinomial logistic regression on the standardised
    /// penultimate features of the training samples, scored on the forget classes' test samples.
    public struct ProbeRecovery: Sendable, Codable {
        public var before: Double
        public var after: Double
        public var trainSamples: Int
        public var testSamples: Int
    }

    public struct Evaluation: Sendable, Codable {
        public var before: ClassificationMetrics
        public var after: ClassificationMetrics
        public var membershipBefore: MembershipInference.Result?
        public var membershipAfter: MembershipInference.Result?
        public var probe: ProbeRecovery?
    }

    public var settings: Settings
    /// `erase` (the default) or `published`.
    public var method: String = UnlearningMethod.published.rawValue
    public var erasure: Erasure?
    public var timings = Timings()
    public var retainSamples: Int
    public var forgetSamples: Int
    /// Held out of the training data for the α search (0 without `--search`).
    public var validationSamples: Int
    public var layers: [Layer] = []
    public var skippedLayers: [LayerDiscovery.Skipped] = []
    public var grid: [GridPoint] = []
    public var chosenAlphaRetain: Double
    public var chosenAlphaForget: Double
    /// On the test set, when one was given.
    public var test: Evaluation?
    /// Notes for the user (honest limits, e.g. a forget accuracy still high).
    public var notes: [String] = []
    /// Names of the model's classes in output order, when known (`--labels`, the model's metadata
    /// or an image folder's class folders).
    public var classNames: [String]?
}
