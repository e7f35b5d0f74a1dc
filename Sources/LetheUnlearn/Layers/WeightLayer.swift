import LetheCore
import LetheIR

/// How a stored weight meets its input vector `x`.
public enum WeightOrientation: String, Sendable, Codable {
    /// `W` of shape `O × d` acting as `W·x` (Conv weights, Gemm with `transB = 1`, a transposed MatMul `B`).
    case outputByInput
    /// `B` of shape `d × O` acting as `x·B` (MatMul's `B`, Gemm with `transB = 0`).
    case inputByOutput
}

/// Where a constant weight lives in the graph, so a patch can be written back to it.
public enum WeightSource: Sendable, Hashable {
    /// A graph initializer of this name.
    case initializer(String)
    /// The `value` attribute of the Constant node at this index of `graph.nodes`.
    case constantNode(index: Int, output: String)

    /// The name a patch is keyed by: the initializer's name, or the Constant node's output.
    public var name: String {
        switch self {
        case .initializer(let name): name
        case .constantNode(_, let output): output
        }
    }
}

/// One node's use of a weight layer: which node to tap, and how its input turns into rows.
public struct LayerUse: Sendable, Hashable {
    public enum Rows: Sendable, Hashable {
        /// Receptive-field patches of a Conv's NCHW (or NCW) input.
        case convolution(ConvGeometry)
        /// The input's last axis holds the vectors (MatMul `A`, Gemm `A` with `transA = 0`).
        case lastAxis
        /// The input is `d × M` and its columns are the vectors (Gemm `A` with `transA = 1`).
        case columns
    }

    /// The node's name in the original graph (taps address nodes by it), or a description of an unnamed node.
    public var node: String
    /// The node's index in the original `graph.nodes` (taps address unnamed nodes by it).
    public var nodeIndex: Int
    /// Whether `node` is the node's real name.
    public var isNamed: Bool
    /// `Conv`, `Gemm` or `MatMul`.
    public var opType: String
    /// The node's input that carries the data.
    public var input: Int
    public var rows: Rows
}

/// A Conv, Gemm or MatMul weight that the projection patches.
public struct WeightLayer: Sendable {
    /// The weight's name (initializer name, or the Constant node's output): what `--layers` matches and
    /// what statistics are keyed by.
    public var name: String
    public var source: WeightSource
    /// The stored tensor's shape.
    public var shape: [Int]
    public var dtype: DType
    /// How the *stored* tensor meets `x` (a Transpose between the two flips it).
    public var orientation: WeightOrientation
    /// Groups (1 unless a grouped convolution); each has its own statistics and projection.
    public var groups: Int
    /// `d`, the input size of one group.
    public var inputDimension: Int
    /// `O`, all groups together.
    public var outputDimension: Int
    public var uses: [LayerUse]

    public var isConvolution: Bool {
        if case .convolution = uses.first?.rows { return true }
        return false
    }

    /// Node names, for messages and the report.
    public var nodeNames: [String] { uses.map(\.node) }
}
