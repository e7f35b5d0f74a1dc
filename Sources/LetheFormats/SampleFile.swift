import LetheCore
import LetheIR
import LetheNumPy

/// How uint8 images become the float32 a model expects: `(x · scale − mean[c]) / std[c]`, with
/// `c` the channel (axis 1) and one value meaning every channel.
public struct ImagePreprocessing: SampleConversion {
    public var scale: Float
    public var mean: [Float]
    public var std: [Float]

    public init(scale: Float = 1.0 / 255.0, mean: [Float] = [0], std: [Float] = [1]) {
        self.scale = scale
        self.mean = mean
        self.std = std
    }

    /// uint8 images (N × C × …, channel on axis 1) as float32; `SampleFile.prepare` has checked the
    /// channel counts.
    public func convert(_ x: Tensor) -> Tensor {
        let channels = x.rank >= 2 ? x.shape[1] : 1
        let perChannel = x.rank >= 2 ? x.shape.dropFirst(2).reduce(1, *) : 1
        var out = Tensor(zeros: .float32, shape: x.shape)
        x.withUnsafeBufferPointer(of: UInt8.self) { source in
            out.withUnsafeMutableBufferPointer(of: Float.self) { target in
                for i in 0..<source.count {
                    let c = (i / perChannel) % channels
                    let mean = self.mean.count == 1 ? self.mean[0] : self.mean[c]
                    let std = self.std.count == 1 ? self.std[0] : self.std[c]
                    target[i] = (Float(source[i]) * scale - mean) / std
                }
            }
        }
        return out
    }
}

/// Loads labelled samples (`x`, `y`) from an `.npz` data file.
public enum SampleFile {
    /// Reads `x` and `y` from `path`. `x` is kept as it is when its dtype is `inputDType` (or
    /// an integer id kind for integer inputs); uint8 images are converted to float32 with
    /// `preprocessing` when the model wants floats.
    public static func load(
        _ path: String, inputDType: DType? = .float32,
        preprocessing: ImagePreprocessing = .init()
    ) throws -> SampleSet {
        try FileError.wrapping(path) {
            let arrays = try NPZFormat.readArrays(path: path)
            guard let x = arrays.first(where: { $0.name == "x" })?.tensor else {
                throw UsageError("no array 'x' (found: \(arrays.map(\.name).joined(separator: ", ")))")
            }
            guard let y = arrays.first(where: { $0.name == "y" })?.tensor else {
                throw UsageError("no array 'y' (found: \(arrays.map(\.name).joined(separator: ", ")))")
            }
            guard y.dtype.isInteger, y.rank == 1 else {
                throw UsageError("'y' must be a 1-D integer array, found \(y.dtype.rawValue) \(y.shape)")
            }
            guard x.rank >= 1, x.shape[0] == y.shape[0] else {
                throw UsageError("'x' has \(x.shape.first ?? 0) rows but 'y' has \(y.shape[0])")
            }
            let labels = y.int64Values().map { Int($0) }
            if let bad = labels.first(where: { $0 < 0 }) {
                throw UsageError("'y' holds a negative label (\(bad))")
            }
            if inputDType == .float32, x.dtype == .uint8 {
                try check(x, preprocessing: preprocessing)
                return SampleSet(stored: x, labels: labels, conversion: preprocessing)
            }
            let inputs = try prepare(x, for: inputDType, preprocessing: preprocessing)
            return SampleSet(inputs: inputs, labels: labels)
        }
    }

    /// Converts `x` to the dtype the model's input declares.
    public static func prepare(_ x: Tensor, for inputDType: DType?, preprocessing: ImagePreprocessing) throws -> Tensor
    {
        guard let target = inputDType, target != x.dtype else { return x }
        if target.isInteger && x.dtype.isInteger {
            return Tensor(shape: x.shape, values: x.int64Values()).castInteger(to: target)
        }
        guard target == .float32 else {
            throw UsageError("'x' is \(x.dtype.rawValue) but the model's input is \(target.rawValue)")
        }
        if x.dtype.isFloatingPoint { return x.convertedFloatingPoint(to: .float32) }
        guard x.dtype == .uint8 else {
            throw UsageError("'x' is \(x.dtype.rawValue); give float32 inputs or uint8 images")
        }
        try check(x, preprocessing: preprocessing)
        return preprocessing.convert(x)
    }

    /// `preprocessing` fits uint8 images `x`: one mean and std, or one per channel, and no zero std.
    private static func check(_ x: Tensor, preprocessing: ImagePreprocessing) throws {
        let channels = x.rank >= 2 ? x.shape[1] : 1
        for (name, values) in [(Setting.mean, preprocessing.mean), (Setting.std, preprocessing.std)]
        where values.count != 1 && values.count != channels {
            throw UsageError("\(name) has \(values.count) values for \(channels) channels")
        }
        if preprocessing.std.contains(0) { throw UsageError("\(Setting.std) must not be 0") }
    }
}

extension Tensor {
    /// An int64 tensor narrowed to another integer dtype (values assumed in range).
    ///
    /// LetheRuntime's Cast has the same switch (`castInt64`); this copy stays because LetheFormats
    /// does not depend on the runtime, and labels only ever need these widths (anything else stays int64).
    func castInteger(to dtype: DType) -> Tensor {
        let values = int64Values()
        switch dtype {
        case .int64: return Tensor(shape: shape, values: values)
        case .int32: return Tensor(shape: shape, values: values.map { Int32(truncatingIfNeeded: $0) })
        case .int16: return Tensor(shape: shape, values: values.map { Int16(truncatingIfNeeded: $0) })
        case .int8: return Tensor(shape: shape, values: values.map { Int8(truncatingIfNeeded: $0) })
        case .uint8: return Tensor(shape: shape, values: values.map { UInt8(truncatingIfNeeded: $0) })
        default: return Tensor(shape: shape, values: values)
        }
    }
}
