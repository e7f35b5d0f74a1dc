import LetheCore

/// The safetensors dtype vocabulary, in the reference library's enum order.
///
/// The order matters: the reference writer sorts tensors by descending dtype (a proxy for
/// alignment), then by name, and a fresh Lethe file follows it.
enum SafetensorsDTypeTable {
    static let names: [String] = [
        "BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0",
        "F8_E4M3FNUZ", "F8_E5M2FNUZ", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "C64",
        "F64", "I64", "U64"
    ]

    /// Names the format defines that have no `DType` (packed sub-byte floats, scale-only f8).
    static let unsupported: Set<String> = ["F4", "F6_E2M3", "F6_E3M2", "F8_E8M0"]

    static let rank: [String: Int] = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
}

extension SafetensorsFormat {
    /// The `DType` a safetensors dtype name stands for; nil for unknown names and for the
    /// format's sub-byte and scale-only kinds (`F4`, `F6_*`, `F8_E8M0`) that Lethe cannot hold.
    public static func dtype(named name: String) -> DType? {
        switch name {
        case "BOOL": .bool
        case "U8": .uint8
        case "I8": .int8
        case "F8_E5M2": .float8e5m2
        case "F8_E4M3": .float8e4m3fn
        case "F8_E4M3FNUZ": .float8e4m3fnuz
        case "F8_E5M2FNUZ": .float8e5m2fnuz
        case "I16": .int16
        case "U16": .uint16
        case "F16": .float16
        case "BF16": .bfloat16
        case "I32": .int32
        case "U32": .uint32
        case "F32": .float32
        case "C64": .complex64
        case "F64": .float64
        case "I64": .int64
        case "U64": .uint64
        default: nil
        }
    }

    /// The safetensors name of `dtype`; nil for `complex128` and strings, which the format lacks.
    public static func name(of dtype: DType) -> String? {
        switch dtype {
        case .bool: "BOOL"
        case .uint8: "U8"
        case .int8: "I8"
        case .float8e5m2: "F8_E5M2"
        case .float8e4m3fn: "F8_E4M3"
        case .float8e4m3fnuz: "F8_E4M3FNUZ"
        case .float8e5m2fnuz: "F8_E5M2FNUZ"
        case .int16: "I16"
        case .uint16: "U16"
        case .float16: "F16"
        case .bfloat16: "BF16"
        case .int32: "I32"
        case .uint32: "U32"
        case .float32: "F32"
        case .complex64: "C64"
        case .float64: "F64"
        case .int64: "I64"
        case .uint64: "U64"
        case .complex128, .bytes, .unicode: nil
        }
    }
}
