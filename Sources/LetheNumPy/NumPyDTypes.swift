import LetheCore
import LetheIR

/// The dtypes NumPy's `.npy` can represent.
public enum NumPyDTypes {
    public static func canStore(_ dtype: DType) -> Bool {
        switch dtype {
        case .bfloat16, .float8e4m3fn, .float8e4m3fnuz, .float8e5m2, .float8e5m2fnuz: false
        default: true
        }
    }

    /// Throws the writers' own refusal (`NPYError.noNumPyDType`) for the first of `initializers`
    /// NumPy cannot store, before anything is written.
    public static func check(_ initializers: [Initializer]) throws {
        if let refused = initializers.first(where: { !canStore($0.tensor.dtype) }) {
            throw NPYError.noNumPyDType(name: refused.name, dtype: refused.tensor.dtype)
        }
    }
}
