import LetheCore
import LetheIR

/// Converts `tensor` to `dtype` with ONNX Cast semantics for the numeric kinds (floats to
/// integers truncate toward zero; anything to bool is "not zero").
func castTensor(_ tensor: Tensor, to dtype: DType) throws -> Tensor {
    if tensor.dtype == dtype { return tensor }
    guard tensor.dtype.isNumeric, dtype.isNumeric else {
        throw RuntimeError("Cast from \(tensor.dtype) to \(dtype) is not supported")
    }
    let n = tensor.elementCount
    if dtype.isFloatingPoint {
        if dtype == .float64 {
            return Tensor(shape: tensor.shape, values: tensor.doubleValues())
        }
        let values: [Float] = tensor.dtype == .float64 ? tensor.doubleValues().map { Float($0) } : tensor.floatValues()
        return Tensor.fromFloats(values, shape: tensor.shape, dtype: dtype)
    }
    if dtype == .bool {
        let values: [Bool] =
            tensor.dtype.isFloatingPoint
            ? tensor.doubleValues().map { $0 != 0 }
            : tensor.int64Values().map { $0 != 0 }
        return Tensor(shape: tensor.shape, values: values)
    }
    // To an integer kind: saturate floats to the int64 range first, then wrap like C casts do.
    let values: [Int64]
    if tensor.dtype.isFloatingPoint {
        values = tensor.doubleValues().map { v in
            guard v.isFinite else { return 0 }
            let t = v.rounded(.towardZero)
            if t >= 9.2e18 { return Int64.max }
            if t <= -9.2e18 { return Int64.min }
            return Int64(t)
        }
    } else if tensor.dtype == .uint64 {
        values = tensor.withUnsafeBufferPointer(of: UInt64.self) { $0.map { Int64(bitPattern: $0) } }
    } else {
        values = tensor.int64Values()
    }
    _ = n
    return try castInt64(values, shape: tensor.shape, to: dtype)
}

/// Int64 values wrapped into an integer `dtype`.
func castInt64(_ values: [Int64], shape: [Int], to dtype: DType) throws -> Tensor {
    switch dtype {
    case .int64: return Tensor(shape: shape, values: values)
    case .int32: return Tensor(shape: shape, values: values.map { Int32(truncatingIfNeeded: $0) })
    case .int16: return Tensor(shape: shape, values: values.map { Int16(truncatingIfNeeded: $0) })
    case .int8: return Tensor(shape: shape, values: values.map { Int8(truncatingIfNeeded: $0) })
    case .uint8: return Tensor(shape: shape, values: values.map { UInt8(truncatingIfNeeded: $0) })
    case .uint16: return Tensor(shape: shape, values: values.map { UInt16(truncatingIfNeeded: $0) })
    case .uint32: return Tensor(shape: shape, values: values.map { UInt32(truncatingIfNeeded: $0) })
    case .uint64: return Tensor(shape: shape, values: values.map { UInt64(bitPattern: $0) })
    case .bool: return Tensor(shape: shape, values: values.map { $0 != 0 })
    default: throw RuntimeError("cannot produce \(dtype) from integers")
    }
}

/// ONNX TensorProto data-type codes for the kinds Cast can target.
func dtype(onnxCode code: Int) -> DType? {
    switch code {
    case 1: .float32
    case 2: .uint8
    case 3: .int8
    case 4: .uint16
    case 5: .int16
    case 6: .int32
    case 7: .int64
    case 9: .bool
    case 10: .float16
    case 11: .float64
    case 12: .uint32
    case 13: .uint64
    case 16: .bfloat16
    default: nil
    }
}

func makeCast(_ request: KernelRequest) throws -> any Kernel {
    let code = try request.int("to", 1)
    guard let target = dtype(onnxCode: code) else { throw Unsupported("Cast to data type \(code)") }
    return ClosureKernel { inputs, _ in [try castTensor(inputs.required(0), to: target)] }
}

/// CastLike: to the dtype of the second input.
func makeCastLike(_ request: KernelRequest) throws -> any Kernel {
    ClosureKernel { inputs, _ in [try castTensor(inputs.required(0), to: inputs.required(1).dtype)] }
}
