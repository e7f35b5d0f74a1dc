/// Conversions between float32 and the 16-bit float kinds, rounding to nearest even and keeping
/// NaN and infinity, as PyTorch and NumPy do.
public enum HalfPrecision {
    @inlinable
    public static func float16Bits(_ value: Float) -> UInt16 {
        Float16(value).bitPattern
    }

    @inlinable
    public static func float(fromFloat16 bits: UInt16) -> Float {
        Float(Float16(bitPattern: bits))
    }

    @inlinable
    public static func bfloat16Bits(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        if value.isNaN {
            // Keep the sign and top payload bits, and force a quiet NaN so truncation cannot make it infinity.
            return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040
        }
        let roundingBias: UInt32 = 0x7FFF + ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: (bits &+ roundingBias) >> 16)
    }

    @inlinable
    public static func float(fromBFloat16 bits: UInt16) -> Float {
        Float(bitPattern: UInt32(bits) << 16)
    }
}
