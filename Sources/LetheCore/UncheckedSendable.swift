/// Carries a value across a concurrency boundary that the caller has checked by hand (pointers
/// whose threads write disjoint elements, a buffer read while nobody writes it).
public struct UncheckedSendable<Value>: @unchecked Sendable {
    public var value: Value
    public init(_ value: Value) { self.value = value }
}
