import LetheCore

/// One dimension of a declared shape.
public enum Dimension: Sendable, Hashable, CustomStringConvertible {
    case fixed(Int)
    case symbolic(String)
    case unknown

    public var description: String {
        switch self {
        case .fixed(let n): String(n)
        case .symbolic(let name): name
        case .unknown: "?"
        }
    }

    public var fixedValue: Int? { if case .fixed(let n) = self { n } else { nil } }
}

/// A named value's declared type: element type and shape, each possibly unknown.
public struct ValueInfo: Sendable, Hashable {
    public var name: String
    public var dtype: DType?
    /// nil when the rank itself is unknown.
    public var shape: [Dimension]?
    public var docString: String

    public init(name: String, dtype: DType? = nil, shape: [Dimension]? = nil, docString: String = "") {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.docString = docString
    }
}

/// An operator attribute, one case per ONNX attribute kind.
public indirect enum Attribute: Sendable {
    case float(Float)
    case int(Int)
    case string([UInt8])
    case tensor(Tensor)
    case graph(Graph)
    case floats([Float])
    case ints([Int])
    case strings([[UInt8]])
    case tensors([Tensor])
    case graphs([Graph])
    /// Kinds Lethe carries but does not interpret (sparse tensors, type protos), by kind name.
    case opaque(kind: String)

    public var intValue: Int? { if case .int(let v) = self { v } else { nil } }
    public var floatValue: Float? {
        switch self {
        case .float(let v): v
        case .int(let v): Float(v)
        default: nil
        }
    }
    public var intsValue: [Int]? { if case .ints(let v) = self { v } else { nil } }
    public var floatsValue: [Float]? { if case .floats(let v) = self { v } else { nil } }
    public var stringValue: String? {
        if case .string(let v) = self { String(decoding: v, as: UTF8.self) } else { nil }
    }
    public var tensorValue: Tensor? { if case .tensor(let v) = self { v } else { nil } }
    public var graphValue: Graph? { if case .graph(let v) = self { v } else { nil } }

    /// The kind's name as ONNX spells it.
    public var kindName: String {
        switch self {
        case .float: "FLOAT"
        case .int: "INT"
        case .string: "STRING"
        case .tensor: "TENSOR"
        case .graph: "GRAPH"
        case .floats: "FLOATS"
        case .ints: "INTS"
        case .strings: "STRINGS"
        case .tensors: "TENSORS"
        case .graphs: "GRAPHS"
        case .opaque(let kind): kind
        }
    }
}

/// One operator application.
public struct Node: Sendable {
    public var name: String
    public var opType: String
    /// Empty for the default ONNX domain.
    public var domain: String
    /// Input value names; an empty string marks an omitted optional input.
    public var inputs: [String]
    public var outputs: [String]
    /// Attributes in file order.
    public var attributes: [(name: String, value: Attribute)]
    public var docString: String

    public init(
        name: String = "", opType: String, domain: String = "", inputs: [String], outputs: [String],
        attributes: [(name: String, value: Attribute)] = [], docString: String = ""
    ) {
        self.name = name
        self.opType = opType
        self.domain = domain
        self.inputs = inputs
        self.outputs = outputs
        self.attributes = attributes
        self.docString = docString
    }

    public func attribute(_ name: String) -> Attribute? {
        attributes.first { $0.name == name }?.value
    }
}

/// A named constant tensor of the graph (a weight, a bias, a shape).
public struct Initializer: Sendable {
    public var name: String
    public var tensor: Tensor
    public init(name: String, tensor: Tensor) {
        self.name = name
        self.tensor = tensor
    }
}

/// A computation graph, or — for weights-only formats — just its initializers.
///
/// Every format maps onto this: ONNX one-to-one, safetensors and npz as initializers and metadata
/// with no nodes.
public struct Graph: Sendable {
    public var name: String
    public var nodes: [Node]
    public var inputs: [ValueInfo]
    public var outputs: [ValueInfo]
    public var valueInfos: [ValueInfo]
    /// Initializers in file order.
    public var initializers: [Initializer]
    public var docString: String

    public init(
        name: String = "", nodes: [Node] = [], inputs: [ValueInfo] = [], outputs: [ValueInfo] = [],
        valueInfos: [ValueInfo] = [], initializers: [Initializer] = [], docString: String = ""
    ) {
        self.name = name
        self.nodes = nodes
        self.inputs = inputs
        self.outputs = outputs
        self.valueInfos = valueInfos
        self.initializers = initializers
        self.docString = docString
    }

    /// The initializer called `name`.
    public func initializer(named name: String) -> Tensor? {
        initializers.first { $0.name == name }?.tensor
    }

    /// Index of the initializer called `name`.
    public func initializerIndex(named name: String) -> Int? {
        initializers.firstIndex { $0.name == name }
    }

    /// Graph inputs that are not also initializers (older exporters list weights as inputs too).
    public var runtimeInputs: [ValueInfo] {
        let weights = Set(initializers.map(\.name))
        return inputs.filter { !weights.contains($0.name) }
    }

    /// Number of scalar parameters held in floating-point initializers.
    public var parameterCount: Int {
        initializers.reduce(0) { $0 + ($1.tensor.dtype.isFloatingPoint ? $1.tensor.elementCount : 0) }
    }
}

/// A model: its graph plus the file-level facts every format can carry.
public struct Model: Sendable {
    public var graph: Graph
    /// Ordered string metadata (ONNX `metadata_props`, safetensors `__metadata__`).
    public var metadata: [(key: String, value: String)]
    public var producerName: String
    public var producerVersion: String
    /// ONNX IR version; 0 for weights-only formats.
    public var irVersion: Int
    /// Operator sets by domain ("" is the default ONNX domain).
    public var opsets: [(domain: String, version: Int)]
    public var docString: String

    public init(
        graph: Graph, metadata: [(key: String, value: String)] = [], producerName: String = "",
        producerVersion: String = "", irVersion: Int = 0, opsets: [(domain: String, version: Int)] = [],
        docString: String = ""
    ) {
        self.graph = graph
        self.metadata = metadata
        self.producerName = producerName
        self.producerVersion = producerVersion
        self.irVersion = irVersion
        self.opsets = opsets
        self.docString = docString
    }

    /// This model with every initializer in aligned memory: readers keep unaligned data as views of
    /// the file, and code that reads elements in place (the interpreter) wants each copied once.
    public func aligningInitializers() -> Model {
        var model = self
        for index in model.graph.initializers.indices {
            model.graph.initializers[index].tensor = model.graph.initializers[index].tensor.alignedForKeeping()
        }
        return model
    }

    /// The default-domain opset version, if declared.
    public var onnxOpset: Int? {
        opsets.first { $0.domain == "" || $0.domain == "ai.onnx" }?.version
    }
}
