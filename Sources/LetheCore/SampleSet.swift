/// Labelled samples ready to feed a model: `inputs` is N × … in the dtype the model's input
/// declares (float32 images already preprocessed, or integer ids), `labels` holds N class ids.
///
/// The inputs are either held in one tensor, held as stored (uint8 images) and converted a batch at
/// a time, or drawn on demand from a `LazySampleStore` (an image folder decoded as passes first need
/// its samples); `subset` of a lazy set only picks indices.
public struct SampleSet: Sendable {
    private enum Storage: Sendable {
        case dense(Tensor)
        /// Rows as stored, converted by `SampleConversion` whenever a batch is read: 1,000 images at
        /// 224² hold 150 MB as uint8 and would hold 600 MB as float32.
        case encoded(Tensor, any SampleConversion)
        /// The store's samples at these indices.
        case lazy(LazySampleStore, [Int])
    }

    private var storage: Storage
    public var labels: [Int]

    public init(inputs: Tensor, labels: [Int]) {
        precondition(
            inputs.rank >= 1 && inputs.shape[0] == labels.count, "\(labels.count) labels for inputs \(inputs.shape)")
        storage = .dense(inputs)
        self.labels = labels
    }

    /// Samples kept as `stored` (N × …) and converted to model inputs batch by batch.
    public init(stored: Tensor, labels: [Int], conversion: any SampleConversion) {
        precondition(
            stored.rank >= 1 && stored.shape[0] == labels.count, "\(labels.count) labels for inputs \(stored.shape)")
        storage = .encoded(stored, conversion)
        self.labels = labels
    }

    /// Every sample of `store`, decoded when first needed.
    public init(lazy store: LazySampleStore) {
        storage = .lazy(store, Array(store.decoder.labels.indices))
        labels = store.decoder.labels
    }

    /// All inputs as one tensor (for a lazy set, every sample decoded and gathered).
    public var inputs: Tensor {
        get {
            switch storage {
            case .dense(let tensor): tensor
            case .encoded(let stored, let conversion): conversion.convert(stored)
            case .lazy(let store, let indices): store.gather(indices)
            }
        }
        set {
            precondition(
                newValue.rank >= 1 && newValue.shape[0] == labels.count,
                "\(labels.count) labels for inputs \(newValue.shape)")
            storage = .dense(newValue)
        }
    }

    /// The lazy store behind this set, if it has one.
    public var lazyStore: LazySampleStore? {
        if case .lazy(let store, _) = storage { return store }
        return nil
    }

    public var count: Int { labels.count }

    /// Shape of one sample (inputs' shape without the leading N).
    public var sampleShape: [Int] {
        switch storage {
        case .dense(let tensor), .encoded(let tensor, _): Array(tensor.shape.dropFirst())
        case .lazy(let store, _): store.decoder.sampleShape
        }
    }

    /// Classes present, ascending.
    public var classes: [Int] { Array(Set(labels)).sorted() }

    /// Inputs of samples `range`, as one batch tensor (copied, contiguous).
    public func batch(_ range: Range<Int>) -> Tensor {
        precondition(range.lowerBound >= 0 && range.upperBound <= count)
        switch storage {
        case .lazy(let store, let indices):
            return store.gather(Array(indices[range]))
        case .dense(let inputs):
            return rows(range, of: inputs)
        case .encoded(let stored, let conversion):
            return conversion.convert(rows(range, of: stored))
        }
    }

    /// Rows `range` of an N × … tensor, copied.
    private func rows(_ range: Range<Int>, of inputs: Tensor) -> Tensor {
        let rowBytes = inputs.byteCount / max(count, 1)
        return inputs.withUnsafeBytes { bytes in
            let slice = UnsafeRawBufferPointer(
                rebasing: bytes[(range.lowerBound * rowBytes)..<(range.upperBound * rowBytes)])
            return Tensor(dtype: inputs.dtype, shape: [range.count] + Array(inputs.shape.dropFirst()), copying: slice)
        }
    }

    /// The samples at `indices`, in that order.
    public func subset(_ indices: [Int]) -> SampleSet {
        switch storage {
        case .lazy(let store, let held):
            var picked = self
            picked.storage = .lazy(
                store,
                indices.map { index in
                    precondition(index >= 0 && index < count)
                    return held[index]
                })
            picked.labels = indices.map { labels[$0] }
            return picked
        case .dense(let inputs):
            return SampleSet(inputs: rows(indices, of: inputs), labels: indices.map { labels[$0] })
        case .encoded(let stored, let conversion):
            return SampleSet(
                stored: rows(indices, of: stored), labels: indices.map { labels[$0] }, conversion: conversion)
        }
    }

    /// Rows `indices` of an N × … tensor, in that order.
    private func rows(_ indices: [Int], of inputs: Tensor) -> Tensor {
        let rowBytes = inputs.byteCount / max(count, 1)
        var out = Tensor(zeros: inputs.dtype, shape: [indices.count] + Array(inputs.shape.dropFirst()))
        inputs.withUnsafeBytes { source in
            out.withUnsafeMutableBytes { target in
                for (row, index) in indices.enumerated() where rowBytes > 0 {
                    precondition(index >= 0 && index < count)
                    (target.baseAddress! + row * rowBytes).copyMemory(
                        from: source.baseAddress! + index * rowBytes, byteCount: rowBytes)
                }
            }
        }
        return out
    }
}

/// Turns stored samples (a batch, N × …) into the model's inputs, e.g. uint8 pixels into normalised
/// float32; the shape stays.
public protocol SampleConversion: Sendable {
    func convert(_ stored: Tensor) -> Tensor
}
