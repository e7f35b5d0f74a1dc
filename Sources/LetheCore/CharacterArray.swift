/// How a tensor of NumPy fixed-width strings (`DType.bytes`, `DType.unicode`) maps to NumPy's view.
///
/// The tensor's last axis is the width in characters, so NumPy's `<U3` scalar is a `unicode` tensor
/// of shape `[3]`. Nothing computes with these tensors: they exist to be carried byte for byte.
public struct CharacterArray: Sendable, Hashable {
    /// NumPy's shape, without the character axis.
    public var shape: [Int]
    /// Characters per element: bytes for `bytes`, UCS-4 code units for `unicode`.
    public var width: Int

    public init(shape: [Int], width: Int) {
        self.shape = shape
        self.width = width
    }

    /// NumPy's dtype without byte order: `S5`, `U3`.
    public func typeName(_ dtype: DType) -> String { "\(dtype.shortName)\(width)" }
}

extension Tensor {
    /// NumPy's shape and string width when this is a character tensor with its character axis;
    /// nil otherwise.
    public var characterArray: CharacterArray? {
        guard dtype.isCharacter, let width = shape.last else { return nil }
        return CharacterArray(shape: Array(shape.dropLast()), width: width)
    }
}
