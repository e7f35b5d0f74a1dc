import Foundation

/// Decodes samples by index, for a `LazySampleStore`: an image folder whose files are read only
/// when a pass over the data first needs them.
public protocol SampleDecoder: Sendable {
    /// Every sample's label, known without decoding.
    var labels: [Int] { get }
    /// Shape of one decoded sample (float32), known without decoding.
    var sampleShape: [Int] { get }
    /// Decodes `indices` (in parallel where it can) into consecutive rows of `rows`, one row of
    /// `sampleShape` elements each; returns the error of every row that could not be decoded.
    func decode(_ indices: [Int], into rows: UnsafeMutableBufferPointer<Float>) -> [Int: any Error]
}

/// Samples decoded on first use and kept: however many passes and subsets a run makes, each
/// sample is decoded at most once, and only the samples some pass uses are ever decoded or held.
///
/// `SampleSet.batch` cannot throw, so a sample that fails to decode reads as zeros and its error
/// is recorded in `failures`; whoever ran the passes must check it before trusting their results.
public final class LazySampleStore: @unchecked Sendable {
    public let decoder: any SampleDecoder
    public let rowElements: Int
    private let lock = NSLock()
    private var rows: [Int: [Float]] = [:]
    private var failed: [Int: any Error] = [:]

    public init(_ decoder: any SampleDecoder) {
        self.decoder = decoder
        rowElements = decoder.sampleShape.reduce(1, *)
    }

    /// Samples that could not be decoded so far (read as zeros), by index, ascending.
    public var failures: [(index: Int, error: any Error)] {
        lock.lock(); defer { lock.unlock() }
        return failed.keys.sorted().map { ($0, failed[$0]!) }
    }

    /// Samples decoded and held so far.
    public var decodedCount: Int {
        lock.lock(); defer { lock.unlock() }
        return rows.count + failed.count
    }

    /// The samples at `indices` as one float32 tensor, decoding those not yet held.
    public func gather(_ indices: [Int]) -> Tensor {
        lock.lock()
        var missing: [Int] = []
        var seen = Set<Int>()
        for index in indices where rows[index] == nil && failed[index] == nil && seen.insert(index).inserted {
            missing.append(index)
        }
        lock.unlock()
        if !missing.isEmpty { decodeAndKeep(missing) }
        var out = Tensor(zeros: .float32, shape: [indices.count] + decoder.sampleShape)
        lock.lock(); defer { lock.unlock() }
        out.withUnsafeMutableBufferPointer(of: Float.self) { target in
            for (position, index) in indices.enumerated() {
                guard let row = rows[index] else { continue } // a failed sample stays zero
                row.withUnsafeBufferPointer { source in
                    (target.baseAddress! + position * rowElements).update(from: source.baseAddress!, count: rowElements)
                }
            }
        }
        return out
    }

    private func decodeAndKeep(_ indices: [Int]) {
        var block = [Float](repeating: 0, count: indices.count * rowElements)
        let errors = block.withUnsafeMutableBufferPointer { decoder.decode(indices, into: $0) }
        lock.lock(); defer { lock.unlock() }
        for (position, index) in indices.enumerated() {
            if let error = errors[position] {
                failed[index] = error
            } else {
                rows[index] = Array(block[(position * rowElements)..<((position + 1) * rowElements)])
            }
        }
    }
}
