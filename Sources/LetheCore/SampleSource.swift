/// Labelled samples that can be read a range at a time: a `SampleSet` already in memory, or a
/// source that decodes files on demand (an image folder), so a pass over the data needs memory
/// for one range, not for all of it.
public protocol SampleSource: Sendable {
    /// Samples listed. A source that skips unreadable samples may deliver fewer.
    var count: Int { get }
    /// The samples of `range` that could be read, in order.
    func load(_ range: Range<Int>) throws -> SampleSet
    /// Every sample in one `SampleSet`, each read once; `progress` gets (done, total).
    func materialize(chunk: Int, progress: (@Sendable (Int, Int) -> Void)?) throws -> SampleSet
}

extension SampleSet: SampleSource {
    public func load(_ range: Range<Int>) throws -> SampleSet {
        SampleSet(inputs: batch(range), labels: Array(labels[range]))
    }

    public func materialize(chunk: Int, progress: (@Sendable (Int, Int) -> Void)?) throws -> SampleSet { self }
}

extension SampleSource {
    public func materialize(chunk: Int, progress: (@Sendable (Int, Int) -> Void)?) throws -> SampleSet {
        try readAll(chunk: chunk, progress: progress)
    }

    /// Reads range after range into one tensor sized for `count` samples at the first range, and
    /// trims it once at the end when samples were skipped.
    public func readAll(chunk: Int, progress: (@Sendable (Int, Int) -> Void)?) throws -> SampleSet {
        var inputs: Tensor?
        var labels: [Int] = []
        labels.reserveCapacity(count)
        var start = 0
        while start < count {
            let end = min(count, start + max(chunk, 1))
            let part = try load(start..<end)
            if part.count > 0 {
                if inputs == nil { inputs = try Self.allocate(count, like: part) }
                let rowBytes = part.inputs.byteCount / part.count
                let offset = labels.count * rowBytes
                part.inputs.withUnsafeBytes { source in
                    inputs!.withUnsafeMutableBytes { target in
                        (target.baseAddress! + offset).copyMemory(from: source.baseAddress!, byteCount: source.count)
                    }
                }
                labels += part.labels
            }
            progress?(end, count)
            start = end
        }
        guard let full = inputs else { throw UsageError("no sample could be read") }
        if labels.count == count { return SampleSet(inputs: full, labels: labels) }
        let kept = full.withUnsafeBytes { bytes in
            Tensor(
                dtype: full.dtype, shape: [labels.count] + Array(full.shape.dropFirst()),
                copying: UnsafeRawBufferPointer(rebasing: bytes[0..<(bytes.count / count * labels.count)]))
        }
        return SampleSet(inputs: kept, labels: labels)
    }

    /// Room for `count` samples shaped as `part`'s, refused with a clear error when it would pass
    /// the tensor limit (`LETHE_MAX_TENSOR_BYTES`, or the machine's memory).
    private static func allocate(_ count: Int, like part: SampleSet) throws -> Tensor {
        let shape = [count] + part.sampleShape
        let limit = Limits.default.maxTensorBytes
        guard let bytes = Tensor.byteCount(dtype: part.inputs.dtype, shape: shape), bytes <= limit else {
            throw UsageError(
                "holding \(count) samples of \(part.sampleShape.map(String.init).joined(separator: "×")) \(part.inputs.dtype.rawValue) in memory would take more than the limit of \(limit) bytes; give fewer samples (or a smaller \(Setting.crop))"
            )
        }
        return Tensor(zeros: part.inputs.dtype, shape: shape)
    }
}
