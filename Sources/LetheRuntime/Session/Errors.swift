import LetheCore

/// The model uses operators or attribute values this runtime cannot execute.
///
/// Thrown by `InferenceSession.init` before anything runs; lists every problem found, not just the first.
public struct UnsupportedOperatorError: LetheError {
    /// One problem: the node (name and op type) and what about it is unsupported.
    public struct Issue: Sendable, Hashable, CustomStringConvertible {
        public let node: String
        public let opType: String
        public let reason: String
        public init(node: String, opType: String, reason: String) {
            self.node = node
            self.opType = opType
            self.reason = reason
        }
        public var description: String {
            node.isEmpty ? "\(opType) node (unnamed): \(reason)" : "\(opType) node '\(node)': \(reason)"
        }
    }

    public let issues: [Issue]
    public init(issues: [Issue]) { self.issues = issues }

    public var description: String {
        let shown = issues.prefix(20).map(\.description).joined(separator: "; ")
        let more = issues.count > 20 ? " (and \(issues.count - 20) more)" : ""
        return "unsupported model: \(shown)\(more)"
    }
}

/// A problem found while running: a missing or mistyped input, shapes that do not agree, a value
/// out of range for an operator.
public struct RuntimeError: LetheError {
    public let message: String
    /// The node being executed, when known.
    public let node: String?
    public init(_ message: String, node: String? = nil) {
        self.message = message
        self.node = node
    }
    public var description: String {
        if let node { return "node '\(node)': \(message)" }
        return message
    }

    func at(_ node: String) -> RuntimeError { RuntimeError(message, node: self.node ?? node) }
}

/// Thrown by an operator factory when the node cannot be executed.
struct Unsupported: Error {
    let reason: String
    init(_ reason: String) { self.reason = reason }
}
