import LetheCore

/// A request to see a value of the original graph while a model runs.
///
/// The callback receives the value as float32, once per run (or once per chunk when a large batch
/// is split). Taps never change the model: rewrites that would hide the tapped value (folding a
/// BatchNormalization into a Conv whose output is tapped, fusing an activation) are skipped for
/// that value only.
public struct ActivationTap: Sendable {
    public enum Port: Sendable, Hashable {
        case input(Int)
        case output(Int)
    }

    enum NodeReference: Sendable, Hashable {
        case name(String)
        case index(Int)
    }

    let node: NodeReference
    public let port: Port
    let body: @Sendable (Tensor) throws -> Void

    /// Taps the node called `node` in the original model graph.
    public init(node: String, port: Port, _ body: @escaping @Sendable (Tensor) throws -> Void) {
        self.node = .name(node)
        self.port = port
        self.body = body
    }

    /// Taps the node at `nodeIndex` in the original model's node list (for unnamed nodes).
    public init(nodeIndex: Int, port: Port, _ body: @escaping @Sendable (Tensor) throws -> Void) {
        self.node = .index(nodeIndex)
        self.port = port
        self.body = body
    }
}
