import LetheCore
@testable import LetheRuntime

/// Decodes a serialized ONNX `TensorProto` (the backend tests' `input_N.pb` / `output_N.pb`).
///
/// A small wire-format reader kept in the test target: LetheONNX decodes tensors inside models,
/// but has no public entry point for a standalone TensorProto file.
enum TensorProtoDecoder {
    struct DecodeError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    struct Decoded {
        let name: String
        let tensor: Tensor
    }

    static func decode(_ bytes: [UInt8]) throws -> Decoded {
        var dims: [Int] = [], dataType = 0, name = ""
        var raw: [UInt8]? = nil
        var floats: [Float] = [], int32s: [Int64] = [], int64s: [Int64] = [], doubles: [Double] = [], uint64s: [UInt64] = []
        var cursor = 0
        func varint() throws -> UInt64 {
            var result: UInt64 = 0, shift: UInt64 = 0
            while true {
                guard cursor < bytes.count, shift < 64 else { throw DecodeError("truncated varint at \(cursor)") }
                let byte = bytes[cursor]; cursor += 1
                result |= UInt64(byte & 0x7f) << shift
                if byte & 0x80 == 0 { return result }
                shift += 7
            }
        }
        func slice(_ length: Int) throws -> ArraySlice<UInt8> {
            guard length >= 0, cursor + length <= bytes.count else { throw DecodeError("field overruns at \(cursor)") }
            defer { cursor += length }
            return bytes[cursor..<(cursor + length)]
        }
        func fixed<T: FixedWidthInteger>(_ s: ArraySlice<UInt8>, _ type: T.Type) -> [T] {
            let size = MemoryLayout<T>.size
            return stride(from: s.startIndex, to: s.endIndex - size + 1, by: size).map { start in
                var value: T = 0
                for k in 0..<size { value |= T(s[start + k]) << (8 * k) }
                return value
            }
        }
        while cursor < bytes.count {
            let key = try varint()
            let field = Int(key >> 3), wire = Int(key & 7)
            switch wire {
            case 0:
                let v = try varint()
                switch field {
                case 1: dims.append(Int(Int64(bitPattern: v)))
                case 2: dataType = Int(v)
                case 5: int32s.append(Int64(Int32(truncatingIfNeeded: v)))
                case 7: int64s.append(Int64(bitPattern: v))
                case 11: uint64s.append(v)
                default: break
                }
            case 1:
                let s = try slice(8)
                if field == 10 { doubles.append(Double(bitPattern: fixed(s, UInt64.self)[0])) }
            case 5:
                let s = try slice(4)
                if field == 4 { floats.append(Float(bitPattern: fixed(s, UInt32.self)[0])) }
            case 2:
                let length = Int(try varint())
                let s = try slice(length)
                switch field {
                case 1, 5, 7, 11:
                    var inner = Array(s)
                    var values: [UInt64] = []
                    var p = 0
                    while p < inner.count {
                        var result: UInt64 = 0, shift: UInt64 = 0
                        while true {
                            guard p < inner.count, shift < 64 else { throw DecodeError("bad packed varint") }
                            let byte = inner[p]; p += 1
                            result |= UInt64(byte & 0x7f) << shift
                            if byte & 0x80 == 0 { break }
                            shift += 7
                        }
                        values.append(result)
                    }
                    inner = []
                    switch field {
                    case 1: dims += values.map { Int(Int64(bitPattern: $0)) }
                    case 5: int32s += values.map { Int64(Int32(truncatingIfNeeded: $0)) }
                    case 7: int64s += values.map { Int64(bitPattern: $0) }
                    default: uint64s += values
                    }
                case 4: floats += fixed(s, UInt32.self).map { Float(bitPattern: $0) }
                case 10: doubles += fixed(s, UInt64.self).map { Double(bitPattern: $0) }
                case 8: name = String(decoding: s, as: UTF8.self)
                case 9: raw = Array(s)
                case 6: throw DecodeError("string tensors are not supported")
                default: break
                }
            default:
                throw DecodeError("unsupported wire type \(wire) at \(cursor)")
            }
        }
        guard let dtype = dtype(onnxCode: dataType) else { throw DecodeError("data type \(dataType) is not supported") }
        guard dims.allSatisfy({ $0 >= 0 }), let byteCount = Tensor.byteCount(dtype: dtype, shape: dims) else {
            throw DecodeError("bad dims \(dims)")
        }
        let count = Tensor.elementCount(dims)
        if let raw {
            guard raw.count == byteCount else { throw DecodeError("raw_data has \(raw.count) bytes, expected \(byteCount)") }
            return Decoded(name: name, tensor: raw.withUnsafeBytes { Tensor(dtype: dtype, shape: dims, copying: $0) })
        }
        let available: Int
        switch dtype {
        case .float32: available = floats.count
        case .float64: available = doubles.count
        case .int64: available = int64s.count
        case .uint64, .uint32: available = uint64s.count
        default: available = int32s.count
        }
        guard available == count else { throw DecodeError("\(available) values for shape \(dims)") }
        let tensor: Tensor
        switch dtype {
        case .float32: tensor = Tensor(shape: dims, values: floats)
        case .float64: tensor = Tensor(shape: dims, values: doubles)
        case .int64: tensor = Tensor(shape: dims, values: int64s)
        case .uint64, .uint32: tensor = try castInt64(uint64s.map { Int64(bitPattern: $0) }, shape: dims, to: dtype)
        case .float16, .bfloat16:
            let bits = int32s.map { UInt16(truncatingIfNeeded: $0) }
            tensor = bits.withUnsafeBytes { Tensor(dtype: dtype, shape: dims, copying: $0) }
        default: tensor = try castInt64(int32s, shape: dims, to: dtype)
        }
        guard tensor.elementCount == count else { throw DecodeError("\(tensor.elementCount) values for \(dims)") }
        return Decoded(name: name, tensor: tensor)
    }
}
