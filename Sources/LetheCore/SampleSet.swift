/// Labelled samples ready to feed a model: `inputs` is N × … in the dtype the model's input
/// declares (float32 images already preprocessed, or integer ids), `labels` holds N class ids.
public struct SampleSet: Sendable {
    public var inputs: Tensor
    public var labels: [Int]

    public init(inputs: Tensor, labels: [Int]) {
        precondition(inputs.rank >= 1 && inputs.shape[0] == labels.count, "\(labels.count) labels for inputs \(inputs.shape)")
        self.inputs = inputs
        self.labels = labels
    }

    public var count: Int { labels.count }

    /// Shape of one sample (inputs' shape without the leading N).
    public var sampleShape: [Int] { Array(inputs.shape.dropFirst()) }

    /// Classes present, ascending.
    public var classes: [Int] { Array(Set(labels)).sorted() }

    /// Inputs of samples `range`, as one batch tensor (copied, contiguous).
    public func batch(_ range: Range<Int>) -> Tensor {
        precondition(range.lowerBound >= 0 && range.upperBound <= count)
        let rowBytes = inputs.byteCount / max(count, 1)
        return inputs.withUnsafeBytes { bytes in
            let slice = UnsafeRawBufferPointer(rebasing: bytes[(range.lowerBound * rowBytes)..<(range.upperBound * rowBytes)])
            return Tensor(dtype: inputs.dtype, shape: [range.count] + sampleShape, copying: slice)
        }
    }

    /// The samples at `indices`, in that order.
    public func subset(_ indices: [Int]) -> SampleSet {
        let rowBytes = inputs.byteCount / max(count, 1)
        var out = Tensor(zeros: inputs.dtype, shape: [indices.count] + sampleShape)
        inputs.withUnsafeBytes { source in
            out.withUnsafeMutableBytes { target in
                for (row, index) in indices.enumerated() where rowBytes > 0 {
                    precondition(index >= 0 && index < count)
                    (target.baseAddress! + row * rowBytes).copyMemory(from: source.baseAddress! + index * rowBytes, byteCount: rowBytes)
                }
            }
        }
        return SampleSet(inputs: out, labels: indices.map { labels[$0] })
    }
}
