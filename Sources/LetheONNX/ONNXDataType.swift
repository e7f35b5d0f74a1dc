import LetheCore

/// The mapping between ONNX `TensorProto.DataType` codes and Lethe's `DType`.
public enum ONNXDataType {
    public static let undefined: Int32 = 0
    public static let float: Int32 = 1
    public static let uint8: Int32 = 2
    public static let int8: Int32 = 3
    public static let uint16: Int32 = 4
    public static let int16: Int32 = 5
    public static let int32: Int32 = 6
    public static let int64: Int32 = 7
    public static let string: Int32 = 8
    public static let bool: Int32 = 9
    public static let float16: Int32 = 10
    public static let double: Int32 = 11
    public static let uint32: Int32 = 12
    public static let uint64: Int32 = 13
    public static let complex64: Int32 = 14
    public static let complex128: Int32 = 15
    public static let bfloat16: Int32 = 16
    public static let float8e4m3fn: Int32 = 17
    public static let float8e4m3fnuz: Int32 = 18
    public static let float8e5m2: Int32 = 19
    public static let float8e5m2fnuz: Int32 = 20
    public static let uint4: Int32 = 21
    public static let int4: Int32 = 22
    public static let float4e2m1: Int32 = 23
    public static let float8e8m0: Int32 = 24
    public static let uint2: Int32 = 25
    public static let int2: Int32 = 26

    /// The `DType` for an ONNX code, or nil for kinds Lethe carries only as bytes (strings,
    /// sub-byte kinds, float8e8m0) and unknown codes.
    public static func dtype(onnx code: Int32) -> DType? {
        switch code {
        case float: .float32
        case uint8: .uint8
        case int8: .int8
        case uint16: .uint16
        case int16: .int16
        case int32: .int32
        case int64: .int64
        case bool: .bool
        case float16: .float16
        case double: .float64
        case uint32: .uint32
        case uint64: .uint64
        case complex64: .complex64
        case complex128: .complex128
        case bfloat16: .bfloat16
        case float8e4m3fn: .float8e4m3fn
        case float8e4m3fnuz: .float8e4m3fnuz
        case float8e5m2: .float8e5m2
        case float8e5m2fnuz: .float8e5m2fnuz
        default: nil
        }
    }

    /// The ONNX code for `dtype`.
    public static func code(for dtype: DType) -> Int32 {
        switch dtype {
        case .float32: float
        case .uint8: uint8
        case .int8: int8
        case .uint16: uint16
        case .int16: int16
        case .int32: int32
        case .int64: int64
        case .bool: bool
        case .float16: float16
        case .float64: double
        case .uint32: uint32
        case .uint64: uint64
        case .complex64: complex64
        case .complex128: complex128
        case .bfloat16: bfloat16
        case .float8e4m3fn: float8e4m3fn
        case .float8e4m3fnuz: float8e4m3fnuz
        case .float8e5m2: float8e5m2
        case .float8e5m2fnuz: float8e5m2fnuz
        // ONNX's own string type; its tensors hold `string_data`, so `ONNXFormat.write` refuses them.
        case .bytes, .unicode: string
        }
    }

    /// The ONNX name of a code (`FLOAT`, `INT4`, …) for messages.
    public static func name(of code: Int32) -> String {
        if let known = Onnx_TensorProto.DataType(rawValue: Int(code)) {
            return String(describing: known).uppercased()
        }
        return "code \(code)"
    }

    /// The typed field that holds values of `dtype` when `raw_data` is absent.
    enum TypedField: Int {
        case floatData = 4, int32Data = 5, int64Data = 7, doubleData = 10, uint64Data = 11

        var name: String {
            switch self {
            case .floatData: "float_data"
            case .int32Data: "int32_data"
            case .int64Data: "int64_data"
            case .doubleData: "double_data"
            case .uint64Data: "uint64_data"
            }
        }
    }

    static func typedField(for dtype: DType) -> TypedField {
        switch dtype {
        case .float32, .complex64: .floatData
        case .float64, .complex128: .doubleData
        case .int64: .int64Data
        case .uint32, .uint64: .uint64Data
        case .int8, .int16, .int32, .uint8, .uint16, .bool, .float16, .bfloat16,
            .float8e4m3fn, .float8e4m3fnuz, .float8e5m2, .float8e5m2fnuz:
            .int32Data
        // Never used: ONNX strings live in `string_data`, no reader yields these kinds and
        // `ONNXFormat.write` refuses them.
        case .bytes, .unicode: .int32Data
        }
    }
}
