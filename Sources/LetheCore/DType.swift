/// The element types a checkpoint can hold.
///
/// Lethe computes with the floating and integer kinds; the float8, complex and character kinds are
/// carried through as opaque bytes so that a rewrite never loses them.
///
/// The character kinds are NumPy's fixed-width strings: `bytes` (`|S n`, one byte per character)
/// and `unicode` (`<U n`, one UCS-4 code unit per character). A tensor of them keeps the width as
/// its last axis: NumPy's `|S5` array of shape `(3,)` is a `bytes` tensor of shape `[3, 5]`, so
/// every byte count and copy works unchanged (see `Tensor.characterArray`).
public enum DType: String, Sendable, CaseIterable, Codable, Hashable {
    case float32, float64, float16, bfloat16
    case int8, int16, int32, int64
    case uint8, uint16, uint32, uint64
    case bool
    case float8e4m3fn, float8e4m3fnuz, float8e5m2, float8e5m2fnuz
    case complex64, complex128
    case bytes, unicode

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .bool, .int8, .uint8, .float8e4m3fn, .float8e4m3fnuz, .float8e5m2, .float8e5m2fnuz, .bytes: 1
        case .float16, .bfloat16, .int16, .uint16: 2
        case .float32, .int32, .uint32, .unicode: 4
        case .float64, .int64, .uint64, .complex64: 8
        case .complex128: 16
        }
    }

    /// The address multiple an element needs to be read in place.
    public var alignment: Int { Swift.min(byteSize, 8) }

    /// Floating kinds Lethe can compute with (and convert between with `--dtype`).
    public var isFloatingPoint: Bool {
        switch self {
        case .float32, .float64, .float16, .bfloat16: true
        default: false
        }
    }

    public var isInteger: Bool {
        switch self {
        case .int8, .int16, .int32, .int64, .uint8, .uint16, .uint32, .uint64: true
        default: false
        }
    }

    /// Kinds whose values Lethe can read as numbers; the rest are carried as bytes.
    public var isNumeric: Bool { isFloatingPoint || isInteger || self == .bool }

    /// NumPy's fixed-width string kinds, whose tensors end with a character axis.
    public var isCharacter: Bool { self == .bytes || self == .unicode }

    /// A short name for messages and `inspect` (`f32`, `bf16`, `i64`, …).
    public var shortName: String {
        switch self {
        case .float32: "f32"
        case .float64: "f64"
        case .float16: "f16"
        case .bfloat16: "bf16"
        case .int8: "i8"
        case .int16: "i16"
        case .int32: "i32"
        case .int64: "i64"
        case .uint8: "u8"
        case .uint16: "u16"
        case .uint32: "u32"
        case .uint64: "u64"
        case .bool: "bool"
        case .float8e4m3fn: "f8e4m3fn"
        case .float8e4m3fnuz: "f8e4m3fnuz"
        case .float8e5m2: "f8e5m2"
        case .float8e5m2fnuz: "f8e5m2fnuz"
        case .complex64: "c64"
        case .complex128: "c128"
        case .bytes: "S"
        case .unicode: "U"
        }
    }

    /// Parses `f32`, `float32`, `f16`, `bf16`, … as the user types them.
    public init?(userName: String) {
        let lower = userName.lowercased()
        if let match = DType.allCases.first(where: { $0.shortName == lower || $0.rawValue == lower }) {
            self = match
        } else {
            return nil
        }
    }
}
