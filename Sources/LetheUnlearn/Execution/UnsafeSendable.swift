/// Hands a value to `concurrentPerform`'s workers; the callers guarantee that what they share is
/// written by one worker at a time (disjoint parts, or under a lock).
struct UnsafeSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
