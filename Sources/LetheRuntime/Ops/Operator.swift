import LetheCore
import LetheIR

/// What a kernel may use while running.
struct ExecutionContext: Sendable {
    let threads: Int
    /// The operands' format in layers' matrix products (read when kernels are made, `KernelRequest`).
    var precision: ProductPrecision = .float32
}

/// A compiled operator: attributes parsed and constant inputs prepared once, run many times.
protocol Kernel: Sendable {
    /// `inputs[i]` is nil for an omitted optional input.
    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor]
}

/// Everything a kernel factory sees: the node, the opset, and which inputs are constants.
struct KernelRequest {
    let node: Node
    let opset: Int
    /// Per input: the constant value when known before running, else nil.
    let constants: [Tensor?]
    /// An activation fused into this node's output (Conv, Gemm, MatMul only).
    var activation: Activation? = nil
    /// A constant row vector added to a MatMul's output before the activation (from a folded Add).
    var fusedBias: Tensor? = nil
    /// Whether oneDNN convolutions offer channels-last (NHWC) activations before channel blocks
    /// (a plan-wide choice, so neighbouring convolutions agree; see `ExecutionPlan`).
    var channelsLast = false
    /// The program of a fused elementwise node (internal domain, `Elementwise`).
    var elementwise: ElementwiseProgram? = nil
    /// Whether a MatMul's input 1 is stored transposed, `N × K` (a 2-D weight read in place of the
    /// Transpose the model applied to it).
    var weightTransposed = false
    /// The operands' format in a MatMul's or Gemm's product with a constant 2-D weight.
    var precision: ProductPrecision = .float32

    var name: String { node.name }
    var inputCount: Int { node.inputs.count }
    func hasInput(_ index: Int) -> Bool { index < node.inputs.count && !node.inputs[index].isEmpty }
    func constant(_ index: Int) -> Tensor? { index < constants.count ? constants[index] : nil }

    func int(_ name: String, _ defaultValue: Int) throws -> Int {
        guard let attribute = node.attribute(name) else { return defaultValue }
        guard let value = attribute.intValue else { throw Unsupported("attribute \(name) is not an int") }
        return value
    }
    func optionalInt(_ name: String) throws -> Int? {
        guard node.attribute(name) != nil else { return nil }
        return try int(name, 0)
    }
    func float(_ name: String, _ defaultValue: Float) throws -> Float {
        guard let attribute = node.attribute(name) else { return defaultValue }
        guard let value = attribute.floatValue else { throw Unsupported("attribute \(name) is not a float") }
        return value
    }
    func ints(_ name: String) throws -> [Int]? {
        guard let attribute = node.attribute(name) else { return nil }
        if let values = attribute.intsValue { return values }
        if let value = attribute.intValue { return [value] }
        throw Unsupported("attribute \(name) is not a list of ints")
    }
    func floats(_ name: String) throws -> [Float]? {
        guard let attribute = node.attribute(name) else { return nil }
        if let values = attribute.floatsValue { return values }
        throw Unsupported("attribute \(name) is not a list of floats")
    }
    func string(_ name: String, _ defaultValue: String) throws -> String {
        guard let attribute = node.attribute(name) else { return defaultValue }
        guard let value = attribute.stringValue else { throw Unsupported("attribute \(name) is not a string") }
        return value
    }
}

typealias KernelFactory = @Sendable (KernelRequest) throws -> any Kernel

/// A kernel from a closure, for operators with no state worth a type of their own.
struct ClosureKernel: Kernel {
    let body: @Sendable ([Tensor?], ExecutionContext) throws -> [Tensor]
    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] { try body(inputs, context) }
}

extension Array where Element == Tensor? {
    /// Input `index`, which the operator requires.
    func required(_ index: Int) throws -> Tensor {
        guard index < count, let tensor = self[index] else {
            throw RuntimeError("required input \(index) is missing")
        }
        return tensor
    }
    func optional(_ index: Int) -> Tensor? { index < count ? self[index] : nil }
}

func requireFloat(_ tensor: Tensor, _ what: String = "input") throws -> Tensor {
    guard tensor.dtype == .float32 else {
        throw RuntimeError("\(what) must be float32 (the compute type), got \(tensor.dtype)")
    }
    return tensor
}
