import Foundation

/// Accumulates `G = Σ x xᵀ` over rows `x ∈ R^d`: rows gather in a float32 block, each full block is
/// reduced with `syrk` and summed into float64.
final class GramAccumulator {
    let dimension: Int
    let blockRows: Int
    /// Upper triangle of `G`, row-major `d × d`, in float64.
    private(set) var upper: [Double]
    /// `Σ x`, in float64: the first moments the erasure method needs beside `G`.
    private(set) var sums: [Double]
    private(set) var rowCount = 0
    /// The rows themselves while there are fewer than `dimension` of them (then `G` has low rank and
    /// its eigen-decomposition is cheaper from the rows, see `FeatureSpace(rows:)`); nil after.
    private(set) var keptRows: [Float]? = []
    private var buffer: UnsafeMutablePointer<Float>?
    private var filled = 0
    private var block: UnsafeMutablePointer<Float>?

    /// `maxBlockRows` bounds the float32 block; it shrinks for wide rows to keep the block near 64 MB.
    init(dimension: Int, maxBlockRows: Int = 4096) {
        self.dimension = dimension
        self.blockRows = max(1, min(maxBlockRows, (16 << 20) / max(dimension, 1)))
        self.upper = [Double](repeating: 0, count: dimension * dimension)
        self.sums = [Double](repeating: 0, count: dimension)
    }

    deinit {
        buffer?.deallocate()
        block?.deallocate()
    }

    /// Appends one row that `fill` writes (exactly `dimension` floats).
    @inline(__always)
    func appendRow(_ fill: (UnsafeMutablePointer<Float>) -> Void) {
        if buffer == nil { buffer = .allocate(capacity: blockRows * dimension) }
        let row = buffer! + filled * dimension
        fill(row)
        keep(row, count: 1)
        filled += 1
        rowCount += 1
        if filled == blockRows { flush() }
    }

    /// Appends `count` rows, `fill(index, row)` writing row `index` (0..<count); rows are filled in
    /// parallel chunks straight into the block, since a tap's body runs while the other cores wait.
    func appendRows(_ count: Int, fill: (Int, UnsafeMutablePointer<Float>) -> Void) {
        var done = 0
        while done < count {
            if buffer == nil { buffer = .allocate(capacity: blockRows * dimension) }
            let n = min(blockRows - filled, count - done)
            let base = buffer! + filled * dimension
            let first = done
            let parts = n * dimension >= 1 << 15 ? min(n, GramAccumulator.workers * 4) : 1
            if parts == 1 {
                for r in 0..<n { fill(first + r, base + r * dimension) }
            } else {
                let d = dimension
                withoutActuallyEscaping(fill) { fill in
                    let shared = UnsafeSendable((fill, base))
                    DispatchQueue.concurrentPerform(iterations: parts) { part in
                        let (fill, base) = shared.value
                        for r in (n * part / parts)..<(n * (part + 1) / parts) { fill(first + r, base + r * d) }
                    }
                }
            }
            keep(base, count: n)
            filled += n
            rowCount += n
            done += n
            if filled == blockRows { flush() }
        }
    }

    private static let workers = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Adds `count` contiguous rows: whole blocks straight from the caller's memory, the rest gathered
    /// into the block so that every `syrk` and float64 sum covers a full block (one batch of a dense
    /// layer is only a few rows).
    func add(rows: UnsafePointer<Float>, count: Int) {
        var start = 0
        while start < count {
            if filled == 0, count - start >= blockRows {
                keep(rows + start * dimension, count: blockRows)
                reduce(rows + start * dimension, count: blockRows)
                rowCount += blockRows
                start += blockRows
                continue
            }
            if buffer == nil { buffer = .allocate(capacity: blockRows * dimension) }
            let n = min(blockRows - filled, count - start)
            (buffer! + filled * dimension).update(from: rows + start * dimension, count: n * dimension)
            keep(rows + start * dimension, count: n)
            filled += n
            rowCount += n
            start += n
            if filled == blockRows { flush() }
        }
    }

    private func keep(_ rows: UnsafePointer<Float>, count: Int) {
        guard keptRows != nil else { return }
        if rowCount + count >= dimension {
            keptRows = nil
        } else {
            keptRows!.append(contentsOf: UnsafeBufferPointer(start: rows, count: count * dimension))
        }
    }

    /// Reduces the partly filled block.
    func flush() {
        guard filled > 0, let buffer else { return }
        reduce(buffer, count: filled)
        filled = 0
    }

    /// The symmetric `G` (row-major, both triangles), after flushing.
    func gram() -> [Double] {
        flush()
        var full = upper
        LinearAlgebra.symmetrizeFromUpper(&full, dimension: dimension)
        releaseScratch()
        return full
    }

    private func reduce(_ rows: UnsafePointer<Float>, count: Int) {
        if block == nil { block = .allocate(capacity: dimension * dimension) }
        upper.withUnsafeMutableBufferPointer { g in
            LinearAlgebra.accumulateGramUpper(
                rows: rows, count: count, dimension: dimension, block: block!, into: g.baseAddress!)
        }
        let d = dimension
        sums.withUnsafeMutableBufferPointer { total in
            for r in 0..<count {
                let row = rows + r * d
                for j in 0..<d { total[j] += Double(row[j]) }
            }
        }
    }

    private func releaseScratch() {
        buffer?.deallocate(); buffer = nil
        block?.deallocate(); block = nil
    }
}

/// Hands a value to `concurrentPerform`'s workers; the callers guarantee the writes are disjoint.
private struct UnsafeSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
