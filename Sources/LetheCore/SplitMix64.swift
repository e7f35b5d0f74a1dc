/// A small, fast, well-mixed generator whose output depends only on its seed (Swift's default
/// generator is not seedable). Used wherever Lethe or its tests need repeatable random choices.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A value in `0..<bound` (0 when `bound` ≤ 1), by the remainder of the next output; it always
    /// advances the generator, so sequences do not depend on the bounds asked for.
    public mutating func next(below bound: Int) -> Int {
        let value = next()
        return bound <= 1 ? 0 : Int(value % UInt64(bound))
    }

    /// Mixes several values into one seed.
    public static func combine(_ values: UInt64...) -> UInt64 {
        var generator = SplitMix64(seed: 0x5EED)
        var result: UInt64 = 0
        for value in values {
            generator = SplitMix64(seed: generator.next() ^ value)
            result = generator.next()
        }
        return result
    }
}
