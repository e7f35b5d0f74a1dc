import CGramKernels
import Foundation

/// Accumulates `G = Σ x xᵀ` over rows `x ∈ R^d`: rows gather in a float32 block, each full block is
/// reduced with `syrk` and summed into float64.
///
/// Memory is what limits ImageNet-size models (ResNet-18 has 21 of these per pass, up to d = 4608), so
/// each accumulator owns only its float64 triangle, packed (`d(d+1)/2` values, allocated with the first
/// rows), and a row block of about 4 MB; the `d × d` float32 product of a block comes from
/// `GramScratch`, shared by every accumulator.
final class GramAccumulator {
    let dimension: Int
    let blockRows: Int
    /// Upper triangle of `G` in float64, packed by rows: row `i` holds columns `i..<d` from
    /// `rowStart(i)`; empty until the first rows arrive.
    private var packed: [Double] = []
    private let widestSquare: Int
    private var spent = false
    /// `Σ x` over the reduced rows, in float64: the first moments the erasure method needs beside `G`.
    private var reducedSums: [Double]
    private(set) var rowCount = 0
    /// The rows themselves while there are fewer than `dimension` of them (then `G` has low rank and
    /// its eigen-decomposition is cheaper from the rows, see `FeatureSpace(rows:)`); nil after. While
    /// rows are kept none is reduced: a caller that works from the rows never pays for `G`, and the
    /// kept rows are reduced at once when they become too many, or when `gram()` is asked for.
    private(set) var keptRows: [Float]? = []
    /// The row block, borrowed from `GramScratch` while rows arrive and given back at the end of
    /// each batch (`endBatch`); `filled` counts its rows, or `pending`'s while it is away.
    private var buffer: UnsafeMutablePointer<Float>?
    private var bufferCapacity = 0
    private var filled = 0
    /// Rows of a batch too few to reduce on their own, held between batches in a copy of their
    /// own size instead of the 4 MB block.
    private var pending: [Float] = []

    /// `maxBlockRows` bounds the float32 row block; it shrinks for wide rows to keep the block near
    /// 4 MB (at d = 4608 that is 227 rows, whose `syrk` still outweighs the float64 sum 227 to 1).
    /// `widestSquare` is the widest row whose Gram block is one square (wider ones go by panels).
    init(dimension: Int, maxBlockRows: Int = 4096, widestSquare: Int = LinearAlgebra.widestSquareGram) {
        self.dimension = dimension
        self.widestSquare = widestSquare
        self.blockRows = max(1, min(maxBlockRows, (1 << 20) / max(dimension, 1)))
        self.reducedSums = [Double](repeating: 0, count: dimension)
    }

    deinit { giveBlock() }

    /// Borrows the row block, with any pending rows back at its start.
    private func takeBlock() {
        guard buffer == nil else { return }
        (buffer, bufferCapacity) = GramScratch.shared.take(blockRows * dimension)
        if !pending.isEmpty {
            buffer!.update(from: pending, count: pending.count)
            pending = []
        }
    }

    /// Rows below which a batch's leftover rows wait for the next batch instead of being reduced:
    /// adding a `syrk` product into the float64 triangle costs about as much as 50 rows of it.
    static let leastReducedRows = 256

    /// Ends a batch: the row block goes back to `GramScratch`, so that only the accumulators of the
    /// tap under way hold one (ViT-B/16's 48 layers held 188 MB of blocks between batches). Leftover
    /// rows are reduced, or kept in a copy their size when they are fewer than `leastReducedRows`.
    func endBatch() {
        guard let block = buffer else { return }
        if keptRows != nil {
            filled = 0 // every buffered row is among the kept ones
        } else if filled >= min(Self.leastReducedRows, blockRows) {
            flush()
        } else if filled > 0 {
            pending = Array(UnsafeBufferPointer(start: block, count: filled * dimension))
        }
        giveBlock()
    }

    private func giveBlock() {
        if let buffer { GramScratch.shared.give((buffer, bufferCapacity)) }
        buffer = nil
    }

    /// Appends one row that `fill` writes (exactly `dimension` floats).
    @inline(__always)
    func appendRow(_ fill: (UnsafeMutablePointer<Float>) -> Void) {
        takeBlock()
        let row = buffer! + filled * dimension
        fill(row)
        keep(row, count: 1, buffered: true)
        filled += 1
        rowCount += 1
        if filled == blockRows { flush() }
    }

    /// Appends `count` rows, `fill(index, row)` writing row `index` (0..<count); rows are filled in
    /// parallel chunks straight into the block, since a tap's body runs while the other cores wait.
    func appendRows(_ count: Int, fill: (Int, UnsafeMutablePointer<Float>) -> Void) {
        var done = 0
        while done < count {
            takeBlock()
            let n = min(blockRows - filled, count - done)
            let base = buffer! + filled * dimension
            let first = done
            let d = dimension
            Self.forEach(n * d >= 1 << 15 && Self.threads > 1 ? min(n, Self.threads * 4) : 1) { part, parts in
                for r in (n * part / parts)..<(n * (part + 1) / parts) { fill(first + r, base + r * d) }
            }
            keep(base, count: n, buffered: true)
            filled += n
            rowCount += n
            done += n
            if filled == blockRows { flush() }
        }
    }

    /// Threads a reduction may split over: the statistics threads, or those of the batch whose tap
    /// runs it when batches run side by side (one each).
    private static var threads: Int { max(1, BatchContext.current?.threads ?? LinearAlgebra.threadCount) }

    /// Whether `addTransposed` may be used: no rows are kept, and the Gram block is one square.
    var acceptsTransposed: Bool { keptRows == nil && dimension <= widestSquare }

    /// Adds `items × rowsPerItem` rows that `fill(item, lines, lineStride)` writes transposed: item
    /// `item`'s rows as `rowsPerItem` consecutive columns of `dimension` lines, `lines` pointing at the
    /// item's first column. For rows that are faster to write as lines (convolution patches, see
    /// `PatchRows.fillLines`); the block product is `syrk` on the transposed layout. Items are split
    /// across threads, each filling and reducing blocks of its own.
    func addTransposed(
        items: Int, rowsPerItem: Int, fill: (Int, UnsafeMutablePointer<Float>, Int) -> Void
    ) {
        precondition(acceptsTransposed, "GramAccumulator.addTransposed while rows are kept")
        precondition(!spent, "GramAccumulator used after gram()")
        guard items > 0, rowsPerItem > 0 else { return }
        let d = dimension
        if packed.isEmpty { packed = [Double](repeating: 0, count: d * (d + 1) / 2) }
        // Blocks of whole items near the row block's 4 MB.
        let perChunk = max(1, min(items, (blockRows * d) / (d * rowsPerItem)))
        let chunks = (items + perChunk - 1) / perChunk
        let lock = NSLock()
        packed.withUnsafeMutableBufferPointer { packed in
            let packed = packed.baseAddress!
            Self.forEach(min(Self.threads, chunks)) { part, parts in
                var sums = [Double](repeating: 0, count: d)
                GramScratch.shared.withBlock(count: d * perChunk * rowsPerItem) { lines in
                    GramScratch.shared.withBlock(count: d * d) { block in
                        for chunk in stride(from: part, to: chunks, by: parts) {
                            let first = chunk * perChunk, count = min(perChunk, items - first)
                            let columns = count * rowsPerItem
                            for item in 0..<count { fill(first + item, lines + item * rowsPerItem, columns) }
                            LinearAlgebra.gramBlock(lines: lines, count: columns, dimension: d, into: block)
                            for i in 0..<d { sums[i] += Self.sum(lines + i * columns, count: columns) }
                            lock.lock()
                            self.add(block, width: d, columns: 0..<d, into: packed)
                            lock.unlock()
                        }
                    }
                }
                lock.lock()
                for i in 0..<d { self.reducedSums[i] += sums[i] }
                lock.unlock()
            }
        }
        rowCount += items * rowsPerItem
    }

    /// Adds `count` contiguous rows: while nothing waits in the block, runs of at least
    /// `leastReducedRows` (up to a block) straight from the caller's memory, and the rest gathered
    /// into the block so that every `syrk` and float64 sum covers enough rows (one batch of a dense
    /// layer is only a few rows). The sums are those of copying the run into the block and reducing
    /// it at `endBatch`, without the copy (a ViT token batch: 3,200 rows each tap).
    func add(rows: UnsafePointer<Float>, count: Int) {
        var start = 0
        while start < count {
            if filled == 0, count - start >= min(blockRows, Self.leastReducedRows) {
                let n = min(blockRows, count - start)
                keep(rows + start * dimension, count: n, buffered: false)
                if keptRows == nil { reduce(rows + start * dimension, count: n) }
                rowCount += n
                start += n
                continue
            }
            takeBlock()
            let n = min(blockRows - filled, count - start)
            (buffer! + filled * dimension).update(from: rows + start * dimension, count: n * dimension)
            keep(rows + start * dimension, count: n, buffered: true)
            filled += n
            rowCount += n
            start += n
            if filled == blockRows { flush() }
        }
    }

    /// Stops keeping rows once the pass is known to bring at least `dimension` of them: `G` is needed
    /// then anyway, and the kept rows would only add up to a `d × d` float32 copy beside it (0.45 GB
    /// over ViT-B/16's twelve 3072-wide layers).
    func expect(rows total: Int) {
        guard total >= dimension, let kept = keptRows else { return }
        keptRows = nil
        // The block's rows are among the kept ones, none reduced yet: reduce them all once.
        if rowCount > 0 { kept.withUnsafeBufferPointer { reduce($0.baseAddress!, count: rowCount) } }
        filled = 0
        pending = []
    }

    /// Keeps `count` new rows while fewer than `dimension` have been seen. When they become too many,
    /// the kept rows (none of them reduced yet) are reduced, and the buffer's older rows, which are
    /// among them, are dropped; `buffered` new rows sit in the buffer after them and move to its start.
    private func keep(_ rows: UnsafePointer<Float>, count: Int, buffered: Bool) {
        guard let kept = keptRows else { return }
        guard rowCount + count >= dimension else {
            keptRows!.append(contentsOf: UnsafeBufferPointer(start: rows, count: count * dimension))
            return
        }
        keptRows = nil
        kept.withUnsafeBufferPointer { reduce($0.baseAddress!, count: rowCount) }
        if buffered, filled > 0 {
            buffer!.update(from: buffer! + filled * dimension, count: count * dimension)
        }
        filled = 0
        pending = []
    }

    /// `Σ x` over every row: complete while rows are kept, else once `gram()` has flushed the block.
    var sums: [Double] {
        guard let kept = keptRows else { return reducedSums }
        var total = [Double](repeating: 0, count: dimension)
        kept.withUnsafeBufferPointer { addSums($0.baseAddress!, count: rowCount, into: &total) }
        return total
    }

    /// Reduces the partly filled block (kept rows stay unreduced until needed).
    func flush() {
        guard filled > 0 else { return }
        if keptRows == nil {
            if let buffer {
                reduce(buffer, count: filled)
            } else {
                pending.withUnsafeBufferPointer { reduce($0.baseAddress!, count: filled) }
            }
        }
        filled = 0
        pending = []
    }

    /// Where row `i` of the packed triangle starts.
    @inline(__always)
    private func rowStart(_ i: Int) -> Int { i * dimension - i * (i - 1) / 2 }

    /// The symmetric `G` (row-major, both triangles), after flushing; the packed triangle is released,
    /// so this can be called once.
    func gram() -> [Double] {
        flush()
        precondition(!spent, "GramAccumulator.gram() called twice")
        if let kept = keptRows, rowCount > 0 {
            kept.withUnsafeBufferPointer { reduceGram($0.baseAddress!, count: rowCount) }
        }
        spent = true
        let d = dimension
        var full = [Double](repeating: 0, count: d * d)
        if !packed.isEmpty {
            packed.withUnsafeBufferPointer { p in
                full.withUnsafeMutableBufferPointer { g in
                    for i in 0..<d {
                        let row = p.baseAddress! + rowStart(i)
                        for j in i..<d {
                            g[i * d + j] = row[j - i]
                            g[j * d + i] = row[j - i]
                        }
                    }
                }
            }
        }
        packed = []
        giveBlock()
        return full
    }

    private func reduce(_ rows: UnsafePointer<Float>, count: Int) {
        reduceGram(rows, count: count)
        addSums(rows, count: count, into: &reducedSums)
    }

    private func reduceGram(_ rows: UnsafePointer<Float>, count: Int) {
        precondition(!spent, "GramAccumulator used after gram()")
        guard count > 0 else { return }
        let d = dimension
        if packed.isEmpty { packed = [Double](repeating: 0, count: d * (d + 1) / 2) }
        // A tap runs while the runtime's other threads wait, so the product is split across them here
        // (OpenBLAS stays single-threaded: its idle workers would spin beside the runtime's).
        let threads = Self.threads
        packed.withUnsafeMutableBufferPointer { packed in
            let packed = packed.baseAddress!
            if d <= widestSquare {
                // Rows split across threads, a float32 block each, summed into the triangle in turn.
                let parts = count * d * d >= 1 << 22 ? min(threads, count / 64) : 1
                let lock = NSLock()
                Self.forEach(max(1, parts)) { part, parts in
                    let lower = count * part / parts, upper = count * (part + 1) / parts
                    GramScratch.shared.withBlock(count: d * d) { block in
                        LinearAlgebra.gramBlock(rows: rows + lower * d, count: upper - lower, dimension: d, into: block)
                        lock.lock()
                        defer { lock.unlock() }
                        self.add(block, width: d, columns: 0..<d, into: packed)
                    }
                }
                return
            }
            // Wide rows: the triangle a column panel at a time, so the float32 scratch is d × 256, not
            // d² (85 MB at d = 4608), for about 6% more flops than syrk there. Panels fill disjoint
            // parts of the triangle, so threads take whole panels.
            let width = LinearAlgebra.gramPanelWidth
            let panels = (d + width - 1) / width
            Self.forEach(min(threads, panels)) { part, parts in
                GramScratch.shared.withBlock(count: d * width) { block in
                    for panel in stride(from: part, to: panels, by: parts) {
                        let columns = (panel * width)..<min(d, (panel + 1) * width)
                        LinearAlgebra.gramPanel(rows: rows, count: count, dimension: d, columns: columns, into: block)
                        self.add(block, width: columns.count, columns: columns, into: packed)
                    }
                }
            }
        }
    }

    /// Runs `body(part, parts)` for every part, on as many threads (the parts write disjoint memory).
    private static func forEach(_ parts: Int, _ body: (Int, Int) -> Void) {
        guard parts > 1 else { return body(0, 1) }
        withoutActuallyEscaping(body) { body in
            let shared = UnsafeSendable(body)
            DispatchQueue.concurrentPerform(iterations: parts) { shared.value($0, parts) }
        }
    }

    /// Adds the upper-triangle part of `block` (rows `0..<columns.upperBound`, `width` floats each,
    /// holding `G[i][columns]`) into the packed float64 triangle.
    private func add(
        _ block: UnsafeMutablePointer<Float>, width: Int, columns: Range<Int>, into packed: UnsafeMutablePointer<Double>
    ) {
        for i in 0..<columns.upperBound {
            let start = max(i, columns.lowerBound)
            let source = block + i * width + (start - columns.lowerBound)
            let target = packed + rowStart(i) + (start - i)
            for k in 0..<(columns.upperBound - start) { target[k] += Double(source[k]) }
        }
    }

    /// `Σ x` of one line in float64, in four independent sums (one running sum waits on each add).
    private static func sum(_ x: UnsafePointer<Float>, count: Int) -> Double {
        var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
        var j = 0
        while j + 4 <= count {
            s0 += Double(x[j])
            s1 += Double(x[j + 1])
            s2 += Double(x[j + 2])
            s3 += Double(x[j + 3])
            j += 4
        }
        while j < count {
            s0 += Double(x[j])
            j += 1
        }
        return (s0 + s1) + (s2 + s3)
    }

    private func addSums(_ rows: UnsafePointer<Float>, count: Int, into total: inout [Double]) {
        let d = dimension
        total.withUnsafeMutableBufferPointer { total in
            if LinearAlgebra.gramKernels, lethe_column_sums(rows, count, d, d, total.baseAddress) == 0 { return }
            for r in 0..<count {
                let row = rows + r * d
                for j in 0..<d { total[j] += Double(row[j]) }
            }
        }
    }
}

/// The float32 `d × d` products of `syrk` and the row blocks, lent to one accumulator at a time.
/// Accumulators reduce on whichever runtime thread fires their tap, so a tap has its row block and at
/// most one product block per thread out at once; returned blocks are kept (the largest few) because
/// a fresh 85 MB block costs more in page faults than its `syrk` on a small batch.
final class GramScratch: @unchecked Sendable {
    static let shared = GramScratch()
    private let lock = NSLock()
    private var free: [(pointer: UnsafeMutablePointer<Float>, capacity: Int)] = []
    /// One block per thread of a split reduction and a row block, the largest sizes.
    private let kept = max(2, ProcessInfo.processInfo.activeProcessorCount) + 1

    func withBlock<Result>(count: Int, _ body: (UnsafeMutablePointer<Float>) throws -> Result) rethrows -> Result {
        let block = take(count)
        defer { give(block) }
        return try body(block.pointer)
    }

    func take(_ count: Int) -> (pointer: UnsafeMutablePointer<Float>, capacity: Int) {
        lock.lock()
        defer { lock.unlock() }
        if let index = free.indices.filter({ free[$0].capacity >= count }).min(by: {
            free[$0].capacity < free[$1].capacity
        }) {
            return free.remove(at: index)
        }
        return (.allocate(capacity: count), count)
    }

    func give(_ block: (pointer: UnsafeMutablePointer<Float>, capacity: Int)) {
        lock.lock()
        defer { lock.unlock() }
        free.append(block)
        free.sort { $0.capacity > $1.capacity }
        while free.count > kept { free.removeLast().pointer.deallocate() }
    }
}
