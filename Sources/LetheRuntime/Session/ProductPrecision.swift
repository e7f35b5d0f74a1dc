import CVectorMath

/// The number format the operands of a layer's matrix product (MatMul or Gemm with a constant 2-D
/// weight) are rounded to before multiplying. Products accumulate in float32 either way, and every
/// other operator (attention, normalisation, activations, convolutions) stays in float32.
public enum ProductPrecision: String, Sendable, CaseIterable {
    /// Exact float32 operands: the default, within 1e-4 of ONNX Runtime.
    case float32
    /// Operands rounded to bfloat16 (8 significant bits, float32's range), as
    /// `torch.autocast("cpu", dtype=torch.bfloat16)` runs a Linear layer: twice the products per
    /// cycle on CPUs with AVX512_BF16, for outputs about 1e-2 relative from float32's.
    case bfloat16

    /// Whether this CPU multiplies in bfloat16 natively; where it does not, `.bfloat16` runs as
    /// `.float32` (an emulated product would be slower than the float32 one it replaces).
    public static var bfloat16Available: Bool { lethe_bfloat16_available() != 0 }

    /// The format products actually run in on this CPU.
    var effective: ProductPrecision { self == .bfloat16 && Self.bfloat16Available ? .bfloat16 : .float32 }
}
