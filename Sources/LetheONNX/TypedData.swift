import Foundation
import LetheCore

/// The typed data fields of `TensorProto` (`float_data`, `int32_data`, …): decoding into tensor
/// bytes, and encoding tensor bytes back, following the ONNX rules for which field holds which type.
enum TypedData {
    /// Values per element in the typed field (complex numbers store real and imaginary parts).
    static func valuesPerElement(_ dtype: DType) -> Int {
        dtype == .complex64 || dtype == .complex128 ? 2 : 1
    }

    static func decode(
        _ proto: Onnx_TensorProto, dtype: DType, shape: [Int], elements: Int,
        label: String
    ) throws -> Tensor {
        let field = ONNXDataType.typedField(for: dtype)
        let count: Int
        switch field {
        case .floatData: count = proto.floatData.count
        case .int32Data: count = proto.int32Data.count
        case .int64Data: count = proto.int64Data.count
        case .doubleData: count = proto.doubleData.count
        case .uint64Data: count = proto.uint64Data.count
        }
        let (expected, overflow) = elements.multipliedReportingOverflow(by: valuesPerElement(dtype))
        if count == 0, elements > 0 { throw ONNXError.missingData(tensor: label) }
        guard !overflow, count == expected else {
            throw ONNXError.dataSizeMismatch(
                tensor: label, field: field.name, expected: overflow ? Int.max : expected,
                actual: count)
        }
        var tensor = Tensor(zeros: dtype, shape: shape)
        tensor.withUnsafeMutableBytes { out in
            switch field {
            case .floatData: proto.floatData.withUnsafeBytes { out.copyMemory(from: $0) }
            case .doubleData: proto.doubleData.withUnsafeBytes { out.copyMemory(from: $0) }
            case .int64Data: proto.int64Data.withUnsafeBytes { out.copyMemory(from: $0) }
            case .uint64Data:
                if dtype == .uint64 {
                    proto.uint64Data.withUnsafeBytes { out.copyMemory(from: $0) }
                } else {
                    let dst = out.bindMemory(to: UInt32.self)
                    for (i, v) in proto.uint64Data.enumerated() { dst[i] = UInt32(truncatingIfNeeded: v) }
                }
            case .int32Data:
                let values = proto.int32Data
                switch dtype.byteSize {
                case 1:
                    let dst = out.bindMemory(to: UInt8.self)
                    for (i, v) in values.enumerated() { dst[i] = UInt8(truncatingIfNeeded: v) }
                case 2:
                    let dst = out.bindMemory(to: UInt16.self)
                    for (i, v) in values.enumerated() { dst[i] = UInt16(truncatingIfNeeded: v) }
                default:
                    values.withUnsafeBytes { out.copyMemory(from: $0) }
                }
            }
        }
        return tensor
    }

    /// Stores `tensor`'s values in the typed field its dtype uses, clearing the others.
    static func store(_ tensor: Tensor, in proto: inout Onnx_TensorProto) {
        proto.floatData = []
        proto.int32Data = []
        proto.int64Data = []
        proto.doubleData = []
        proto.uint64Data = []
        proto.clearRawData()
        // Typed fields read elements in place.
        tensor.aligned().withUnsafeBytes { raw in
            switch ONNXDataType.typedField(for: tensor.dtype) {
            case .floatData: proto.floatData = Array(raw.bindMemory(to: Float.self))
            case .doubleData: proto.doubleData = Array(raw.bindMemory(to: Double.self))
            case .int64Data: proto.int64Data = Array(raw.bindMemory(to: Int64.self))
            case .uint64Data:
                proto.uint64Data =
                    tensor.dtype == .uint64
                    ? Array(raw.bindMemory(to: UInt64.self))
                    : raw.bindMemory(to: UInt32.self).map { UInt64($0) }
            case .int32Data: proto.int32Data = int32Values(tensor.dtype, raw)
            }
        }
    }

    /// The `int32_data` values of a tensor stored there: signed kinds sign-extend, the others
    /// (unsigned, bool, half and 8-bit floats as bit patterns) zero-extend.
    static func int32Values(_ dtype: DType, _ raw: UnsafeRawBufferPointer) -> [Int32] {
        switch dtype {
        case .int8: raw.bindMemory(to: Int8.self).map { Int32($0) }
        case .int16: raw.bindMemory(to: Int16.self).map { Int32($0) }
        case .int32: Array(raw.bindMemory(to: Int32.self))
        case .uint16, .float16, .bfloat16: raw.bindMemory(to: UInt16.self).map { Int32($0) }
        default: raw.bindMemory(to: UInt8.self).map { Int32($0) }
        }
    }

    /// The payload of the packed record that holds `tensor` in `field`, as protobuf writes it.
    static func packedPayload(_ tensor: Tensor, field: Int) -> [UInt8]? {
        guard ONNXDataType.typedField(for: tensor.dtype).rawValue == field else { return nil }
        return tensor.withUnsafeBytes { raw -> [UInt8] in
            switch ONNXDataType.typedField(for: tensor.dtype) {
            case .floatData, .doubleData:
                return Array(raw)
            case .int64Data:
                var out: [UInt8] = []
                for v in raw.bindMemory(to: Int64.self) { appendVarint(UInt64(bitPattern: v), to: &out) }
                return out
            case .uint64Data:
                var out: [UInt8] = []
                if tensor.dtype == .uint64 {
                    for v in raw.bindMemory(to: UInt64.self) { appendVarint(v, to: &out) }
                } else {
                    for v in raw.bindMemory(to: UInt32.self) { appendVarint(UInt64(v), to: &out) }
                }
                return out
            case .int32Data:
                var out: [UInt8] = []
                for v in int32Values(tensor.dtype, raw) { appendVarint(UInt64(bitPattern: Int64(v)), to: &out) }
                return out
            }
        }
    }
}
