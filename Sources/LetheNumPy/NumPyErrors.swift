import LetheCore

/// What is wrong with a `.npy` array (or why a tensor cannot become one).
public enum NPYError: LetheError {
    case badMagic(name: String)
    case unsupportedVersion(name: String, major: UInt8, minor: UInt8)
    case headerTooLarge(name: String, length: Int, limit: Int)
    /// The header dict is not the literal NumPy writes; `offset` counts from the array's start.
    case invalidHeader(name: String, offset: Int, reason: String)
    /// Object arrays hold pickled Python objects, which could run code when loaded.
    case pickledArray(name: String)
    case unsupportedDescr(name: String, descr: String, reason: String)
    case shapeOverflow(name: String, shape: [Int])
    /// The data is shorter or longer than the header's shape and dtype need.
    case dataSizeMismatch(name: String, expected: Int, actual: Int)
    /// A tensor whose dtype NumPy lacks.
    case noNumPyDType(name: String, dtype: DType)
    /// A string tensor without the last axis that holds its width.
    case missingCharacterAxis(name: String, dtype: DType)

    public var description: String {
        switch self {
        case .badMagic(let name):
            "\(name): not a .npy array (missing the \\x93NUMPY magic at offset 0)"
        case .unsupportedVersion(let name, let major, let minor):
            "\(name): unsupported .npy format version \(major).\(minor) (offset 6); 1.0, 2.0 and 3.0 are read"
        case .headerTooLarge(let name, let length, let limit):
            "\(name): .npy header of \(length) bytes is over the limit of \(limit)"
        case .invalidHeader(let name, let offset, let reason):
            "\(name): invalid .npy header at offset \(offset): \(reason)"
        case .pickledArray(let name):
            "\(name): object array (descr 'O') holds pickled Python objects; Lethe refuses to load pickles"
        case .unsupportedDescr(let name, let descr, let reason):
            "\(name): unsupported .npy dtype '\(descr)': \(reason)"
        case .shapeOverflow(let name, let shape):
            "\(name): byte size of shape \(shape) overflows"
        case .dataSizeMismatch(let name, let expected, let actual):
            "\(name): array data is \(actual) bytes, its shape and dtype need \(expected)"
        case .noNumPyDType(let name, let dtype):
            switch dtype {
            case .bfloat16:
                "\(name): NumPy has no bfloat16; convert with \(Setting.dtype) f32"
            default:
                "\(name): NumPy has no \(dtype.shortName) dtype; convert with \(Setting.dtype) f32"
            }
        case .missingCharacterAxis(let name, let dtype):
            "\(name): a \(dtype.rawValue) string tensor needs a last axis holding its width in characters"
        }
    }
}
