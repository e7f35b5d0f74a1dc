extension Tensor {
    /// Every element as Float (from any numeric dtype; bool as 0/1).
    public func floatValues() -> [Float] {
        var result = [Float](repeating: 0, count: elementCount)
        result.withUnsafeMutableBufferPointer { out in convertToFloat(into: out) }
        return result
    }

    /// Every element as Double.
    public func doubleValues() -> [Double] {
        if dtype == .float64 { return withUnsafeBufferPointer(of: Double.self) { Array($0) } }
        if dtype == .int64 { return withUnsafeBufferPointer(of: Int64.self) { $0.map { Double($0) } } }
        return floatValues().map { Double($0) }
    }

    /// Every element as Int64 (floats truncated toward zero).
    public func int64Values() -> [Int64] {
        precondition(dtype.isNumeric, "\(dtype) has no numeric values")
        switch dtype {
        case .int64: return withUnsafeBufferPointer(of: Int64.self) { Array($0) }
        case .int32: return withUnsafeBufferPointer(of: Int32.self) { $0.map { Int64($0) } }
        case .int16: return withUnsafeBufferPointer(of: Int16.self) { $0.map { Int64($0) } }
        case .int8: return withUnsafeBufferPointer(of: Int8.self) { $0.map { Int64($0) } }
        case .uint8: return withUnsafeBufferPointer(of: UInt8.self) { $0.map { Int64($0) } }
        case .uint16: return withUnsafeBufferPointer(of: UInt16.self) { $0.map { Int64($0) } }
        case .uint32: return withUnsafeBufferPointer(of: UInt32.self) { $0.map { Int64($0) } }
        case .uint64: return withUnsafeBufferPointer(of: UInt64.self) { $0.map { Int64(truncatingIfNeeded: $0) } }
        case .bool: return withUnsafeBufferPointer(of: Bool.self) { $0.map { $0 ? 1 : 0 } }
        case .float64:
            return withUnsafeBufferPointer(of: Double.self) { $0.map { Int64(exactly: $0.rounded(.towardZero)) ?? 0 } }
        default: return floatValues().map { Int64(exactly: $0.rounded(.towardZero)) ?? 0 }
        }
    }

    /// Writes every element, converted to Float, into `out` (which holds `elementCount` floats).
    public func convertToFloat(into out: UnsafeMutableBufferPointer<Float>) {
        precondition(out.count >= elementCount)
        precondition(dtype.isNumeric, "\(dtype) has no numeric values")
        let n = elementCount
        let raw = storage.bytes
        func each<T>(_ type: T.Type, _ convert: (T) -> Float) {
            for i in 0..<n {
                out[i] = convert(raw.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.stride, as: T.self))
            }
        }
        switch dtype {
        case .float32:
            if n > 0 {
                UnsafeMutableRawBufferPointer(out).copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[0..<(n * 4)]))
            }
        case .float64: each(Double.self) { Float($0) }
        case .float16: each(UInt16.self) { HalfPrecision.float(fromFloat16: $0) }
        case .bfloat16: each(UInt16.self) { HalfPrecision.float(fromBFloat16: $0) }
        case .int8: each(Int8.self) { Float($0) }
        case .int16: each(Int16.self) { Float($0) }
        case .int32: each(Int32.self) { Float($0) }
        case .int64: each(Int64.self) { Float($0) }
        case .uint8: each(UInt8.self) { Float($0) }
        case .uint16: each(UInt16.self) { Float($0) }
        case .uint32: each(UInt32.self) { Float($0) }
        case .uint64: each(UInt64.self) { Float($0) }
        case .bool: each(UInt8.self) { $0 == 0 ? 0 : 1 }
        default: preconditionFailure("unreachable")
        }
    }

    /// A float32 tensor of the same shape holding `values`.
    public static func float32(shape: [Int], _ values: [Float]) -> Tensor {
        Tensor(shape: shape, values: values)
    }

    /// This tensor in another floating dtype (round to nearest even); non-floating tensors and
    /// identical dtypes are returned unchanged.
    public func convertedFloatingPoint(to target: DType) -> Tensor {
        guard dtype.isFloatingPoint, target.isFloatingPoint, dtype != target else { return self }
        let values = floatValues()
        return Tensor.fromFloats(
            values, shape: shape, dtype: target, sourceDoubles: dtype == .float64 ? doubleValues() : nil)
    }

    /// Builds a tensor of a floating `dtype` from float values (rounding to nearest even).
    public static func fromFloats(
        _ values: [Float], shape: [Int], dtype: DType, sourceDoubles: [Double]? = nil
    ) -> Tensor {
        switch dtype {
        case .float32:
            return Tensor(shape: shape, values: values)
        case .float64:
            return Tensor(shape: shape, values: sourceDoubles ?? values.map { Double($0) })
        case .float16:
            return Tensor(shape: shape, values: values.map { Float16($0) })
        case .bfloat16:
            return Tensor(shape: shape, values: values.map { BFloat16($0) })
        default:
            preconditionFailure("fromFloats into non-floating \(dtype)")
        }
    }

    /// A float tensor of this tensor's dtype holding `values` (for patching weights in place of
    /// the originals: float64 keeps full precision from `doubles` when given).
    public func replacingValues(with doubles: [Double]) -> Tensor {
        precondition(doubles.count == elementCount)
        if dtype == .float64 { return Tensor(shape: shape, values: doubles) }
        return Tensor.fromFloats(doubles.map { Float($0) }, shape: shape, dtype: dtype)
    }

    /// The bytes with every element's byte order reversed (for big-endian sources).
    public func byteSwapped() -> Tensor {
        let width = dtype == .complex64 ? 4 : (dtype == .complex128 ? 8 : dtype.byteSize)
        guard width > 1 else { return self }
        var copy = Tensor(dtype: dtype, shape: shape, copying: storage.bytes)
        copy.withUnsafeMutableBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                var lo = offset, hi = offset + width - 1
                while lo < hi { bytes.swapAt(lo, hi); lo += 1; hi -= 1 }
                offset += width
            }
        }
        return copy
    }
}
