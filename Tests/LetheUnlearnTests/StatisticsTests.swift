import Foundation
import LetheCore
import LetheIR
import LetheSafetensors
import XCTest
@testable import LetheUnlearn

final class StatisticsTests: XCTestCase {
    /// Naive patches: pad the image explicitly, then read the window; rows of one group, C·kh·kw order.
    private func naivePatches(
        _ image: [Float], channels: Int, height: Int, width: Int, geometry g: ConvGeometry, group: Int
    ) -> [[Float]] {
        let p = g.resolvedPads(height: height, width: width)
        let ph = height + p[0] + p[2], pw = width + p[1] + p[3]
        var padded = [Float](repeating: 0, count: channels * ph * pw)
        for c in 0..<channels {
            for y in 0..<height {
                for x in 0..<width {
                    padded[c * ph * pw + (y + p[0]) * pw + x + p[1]] = image[c * height * width + y * width + x]
                }
            }
        }
        let oh = (ph - g.dilations[0] * (g.kernel[0] - 1) - 1) / g.strides[0] + 1
        let ow = (pw - g.dilations[1] * (g.kernel[1] - 1) - 1) / g.strides[1] + 1
        let cg = channels / g.group
        var rows: [[Float]] = []
        for oy in 0..<oh {
            for ox in 0..<ow {
                var row: [Float] = []
                for c in (group * cg)..<((group + 1) * cg) {
                    for ky in 0..<g.kernel[0] {
                        for kx in 0..<g.kernel[1] {
                            row.append(
                                padded[
                                    c * ph * pw + (oy * g.strides[0] + ky * g.dilations[0]) * pw + ox * g.strides[1]
                                        + kx * g.dilations[1]])
                        }
                    }
                }
                rows.append(row)
            }
        }
        return rows
    }

    private let geometries: [(ConvGeometry, channels: Int, height: Int, width: Int)] = [
        (ConvGeometry(kernel: [3, 3], pads: [1, 1, 1, 1]), 2, 5, 6),
        (ConvGeometry(kernel: [3, 2], strides: [2, 1], dilations: [1, 2], pads: [0, 2, 1, 0]), 3, 7, 5),
        (ConvGeometry(kernel: [3, 3], strides: [2, 2], autoPad: "SAME_UPPER"), 2, 6, 5),
        (ConvGeometry(kernel: [2, 2], strides: [2, 2], autoPad: "SAME_LOWER"), 1, 5, 5),
        (ConvGeometry(kernel: [1, 1], autoPad: "VALID", group: 2), 4, 3, 3),
        (ConvGeometry(kernel: [3, 3], dilations: [2, 2], pads: [2, 2, 2, 2], group: 3), 6, 6, 7)
    ]

    func testPatchRowsMatchNaiveExtraction() {
        for (index, (geometry, c, h, w)) in geometries.enumerated() {
            let image = TestSupport.randomValues(c * h * w, seed: UInt64(index)).map(Float.init)
            let patches = PatchRows(channels: c, height: h, width: w, geometry: geometry)
            for group in 0..<geometry.group {
                let expected = naivePatches(image, channels: c, height: h, width: w, geometry: geometry, group: group)
                XCTAssertEqual(patches.positions, expected.count, "geometry \(index)")
                var row = [Float](repeating: .nan, count: patches.rowLength)
                image.withUnsafeBufferPointer { source in
                    for position in 0..<patches.positions {
                        row.withUnsafeMutableBufferPointer {
                            patches.fill(
                                row: $0.baseAddress!, image: source.baseAddress!, group: group, position: position)
                        }
                        XCTAssertEqual(row, expected[position], "geometry \(index) group \(group) position \(position)")
                    }
                    // The same patches as lines: line i holds element i of every position, after a gap.
                    let stride = patches.positions + 3
                    var lines = [Float](repeating: .nan, count: patches.rowLength * stride)
                    lines.withUnsafeMutableBufferPointer {
                        patches.fillLines($0.baseAddress!, lineStride: stride, image: source.baseAddress!, group: group)
                    }
                    for i in 0..<patches.rowLength {
                        XCTAssertEqual(
                            Array(lines[(i * stride)..<(i * stride + patches.positions)]), expected.map { $0[i] },
                            "geometry \(index) group \(group) line \(i)")
                        XCTAssertTrue(lines[(i * stride + patches.positions)..<((i + 1) * stride)].allSatisfy(\.isNaN))
                    }
                }
            }
        }
    }

    func testSamePaddingMatchesOnnxRule() {
        // ONNX SAME_UPPER, in 5, kernel 3, stride 2: out 3, total pad 2 → 1 before, 1 after.
        let g = ConvGeometry(kernel: [3, 3], strides: [2, 2], autoPad: "SAME_UPPER")
        XCTAssertEqual(g.resolvedPads(height: 5, width: 6), [1, 0, 1, 1])
        XCTAssertEqual(
            ConvGeometry(kernel: [2, 2], autoPad: "SAME_LOWER").resolvedPads(height: 4, width: 4), [1, 1, 0, 0])
        XCTAssertEqual(g.outputSize(height: 5, width: 6).height, 3)
        XCTAssertEqual(g.outputSize(height: 5, width: 6).width, 3)
    }

    /// The sink (patches, blocks of syrk, float64 sum) matches a naive float64 Gram of the naive rows.
    func testConvolutionGramMatchesNaive() throws {
        for (index, (geometry, c, h, w)) in geometries.enumerated() {
            let n = 3
            let images = TestSupport.randomValues(n * c * h * w, seed: 100 + UInt64(index)).map(Float.init)
            let d = (c / geometry.group) * geometry.kernel[0] * geometry.kernel[1]
            let layer = WeightLayer(
                name: "w", source: .initializer("w"), shape: [geometry.group * 2, c / geometry.group] + geometry.kernel,
                dtype: .float32, orientation: .outputByInput, groups: geometry.group, inputDimension: d,
                outputDimension: geometry.group * 2,
                uses: [
                    LayerUse(
                        node: "conv", nodeIndex: 0, isNamed: true, opType: "Conv", input: 0,
                        rows: .convolution(geometry))
                ])
            let sink = LayerRowSink(layer: layer, layerIndex: 0, positionCap: nil, seed: 0)
            try sink.consume(Tensor(shape: [n, c, h, w], values: images), use: layer.uses[0], useIndex: 0)
            let finished = sink.grams()
            let grams = finished.grams
            // Told the pass brings enough rows, a sink keeps none and reduces patches as lines.
            let told = LayerRowSink(layer: layer, layerIndex: 0, positionCap: nil, seed: 0)
            told.expectedImages = n
            for image in 0..<n {
                let one = Array(images[(image * c * h * w)..<((image + 1) * c * h * w)])
                try told.consume(Tensor(shape: [1, c, h, w], values: one), use: layer.uses[0], useIndex: 0)
            }
            let lines = told.grams()
            let rowSums = finished.sums
            for group in 0..<geometry.group {
                XCTAssertLessThan(
                    TestSupport.maxAbsDifference(lines.grams[group], grams[group]), 1e-4, "geometry \(index) lines")
                XCTAssertLessThan(TestSupport.maxAbsDifference(lines.sums[group], rowSums[group]), 1e-9)
                XCTAssertNil(lines.rows[group])
            }
            for group in 0..<geometry.group {
                var rows: [Double] = []
                for image in 0..<n {
                    let one = Array(images[(image * c * h * w)..<((image + 1) * c * h * w)])
                    rows += naivePatches(one, channels: c, height: h, width: w, geometry: geometry, group: group)
                        .flatMap { $0.map(Double.init) }
                }
                let expected = TestSupport.gram(rows, rows: rows.count / d, d: d)
                XCTAssertLessThan(
                    TestSupport.maxAbsDifference(grams[group], expected), 1e-4, "geometry \(index) group \(group)")
                XCTAssertEqual(grams[group], TestSupport.transpose(grams[group], rows: d, columns: d))
            }
            XCTAssertEqual(sink.rowCount, n * PatchRows(channels: c, height: h, width: w, geometry: geometry).positions)
        }
    }

    /// Above the cap, each image contributes `cap` seeded positions, the same ones on a rerun.
    func testCappedPositionsGram() throws {
        let geometry = ConvGeometry(kernel: [3, 3], pads: [1, 1, 1, 1])
        let (n, c, h, w, cap) = (4, 2, 5, 6, 10)
        let d = c * 9
        let images = TestSupport.randomValues(n * c * h * w, seed: 77).map(Float.init)
        let layer = WeightLayer(
            name: "w", source: .initializer("w"), shape: [2, c, 3, 3], dtype: .float32, orientation: .outputByInput,
            groups: 1, inputDimension: d, outputDimension: 2,
            uses: [
                LayerUse(
                    node: "conv", nodeIndex: 0, isNamed: true, opType: "Conv", input: 0, rows: .convolution(geometry))
            ])
        func run() throws -> (gram: [Double], rows: Int) {
            let sink = LayerRowSink(layer: layer, layerIndex: 3, positionCap: cap, seed: 9)
            sink.passTag = 1
            // Two chunks of two images: the sink numbers images itself.
            try sink.consume(
                Tensor(shape: [2, c, h, w], values: Array(images[0..<(2 * c * h * w)])), use: layer.uses[0], useIndex: 0
            )
            try sink.consume(
                Tensor(shape: [2, c, h, w], values: Array(images[(2 * c * h * w)...])), use: layer.uses[0], useIndex: 0)
            return (sink.grams().grams[0], sink.rowCount)
        }
        let first = try run()
        XCTAssertEqual(first.rows, n * cap)
        XCTAssertEqual(first.gram, try run().gram)
        var rows: [Double] = []
        for image in 0..<n {
            let all = naivePatches(
                Array(images[(image * c * h * w)..<((image + 1) * c * h * w)]), channels: c, height: h, width: w,
                geometry: geometry, group: 0)
            let chosen = PositionSampler.positions(
                total: h * w, cap: cap, seed: SplitMix64.combine(9, 1, 3, 0, UInt64(image)))
            rows += chosen.flatMap { all[$0].map(Double.init) }
        }
        XCTAssertLessThan(TestSupport.maxAbsDifference(first.gram, TestSupport.gram(rows, rows: n * cap, d: d)), 1e-4)
    }

    /// Many rows across several float32 blocks still sum to the float64 Gram.
    func testDenseGramAcrossBlocks() throws {
        let d = 5, rows = 10_000
        let x = TestSupport.randomValues(rows * d, seed: 7).map(Float.init)
        let accumulator = GramAccumulator(dimension: d, maxBlockRows: 4096)
        x.withUnsafeBufferPointer { accumulator.add(rows: $0.baseAddress!, count: rows) }
        let expected = TestSupport.gram(x.map(Double.init), rows: rows, d: d)
        let got = accumulator.gram()
        // float32 blocks: error relative to the row norms, not to a (possibly cancelling) entry.
        for i in 0..<d {
            for j in 0..<d {
                let scale = (expected[i * d + i] * expected[j * d + j]).squareRoot()
                XCTAssertEqual(got[i * d + j], expected[i * d + j], accuracy: 1e-6 * scale)
            }
        }

        // Tokens of a [B, T, d] activation are all rows; columns of a transA Gemm input too.
        let layer = WeightLayer(
            name: "b", source: .initializer("b"), shape: [d, 3], dtype: .float32, orientation: .inputByOutput,
            groups: 1, inputDimension: d, outputDimension: 3,
            uses: [
                LayerUse(node: "mm", nodeIndex: 0, isNamed: true, opType: "MatMul", input: 0, rows: .lastAxis),
                LayerUse(node: "gemm", nodeIndex: 0, isNamed: true, opType: "Gemm", input: 0, rows: .columns)
            ])
        let sink = LayerRowSink(layer: layer, layerIndex: 0, positionCap: nil, seed: 0)
        let tokens = Array(x.prefix(2 * 3 * d))
        try sink.consume(Tensor(shape: [2, 3, d], values: tokens), use: layer.uses[0], useIndex: 0)
        let columns = TestSupport.transpose(tokens.map(Double.init), rows: 6, columns: d).map(Float.init)
        try sink.consume(Tensor(shape: [d, 6], values: columns), use: layer.uses[1], useIndex: 1)
        let twice = TestSupport.gram(tokens.map(Double.init), rows: 6, d: d).map { 2 * $0 }
        XCTAssertLessThan(TestSupport.maxAbsDifference(sink.grams().grams[0], twice), 1e-5)
        XCTAssertEqual(sink.rowCount, 12)
    }

    /// Rows kept while fewer than `d` are reduced only when they become too many (or `G` is asked
    /// for), through every way rows arrive and across small blocks: the Gram and sums stay exact.
    func testKeptRowsAreReducedOnceWhenTheyBecomeTooMany() {
        let d = 8
        let x = TestSupport.randomValues(40 * d, seed: 17).map(Float.init)
        for (keptCount, blockRows) in [(5, 2), (7, 3), (40, 2), (40, 4096)] {
            let accumulator = GramAccumulator(dimension: d, maxBlockRows: blockRows)
            var next = 0
            // Rows arrive one at a time, in parallel-filled runs and as contiguous blocks, in turn.
            while next < keptCount {
                let count = min([1, 3, 5][next % 3], keptCount - next)
                switch next % 3 {
                case 0: accumulator.appendRow { row in for j in 0..<d { row[j] = x[next * d + j] } }
                case 1:
                    let first = next
                    accumulator.appendRows(count) { index, row in
                        for j in 0..<d { row[j] = x[(first + index) * d + j] }
                    }
                default: x.withUnsafeBufferPointer { accumulator.add(rows: $0.baseAddress! + next * d, count: count) }
                }
                next += next % 3 == 0 ? 1 : count
            }
            let rows = x.prefix(keptCount * d).map(Double.init)
            XCTAssertEqual(accumulator.keptRows != nil, keptCount < d, "\(keptCount) rows")
            let expectedSums = (0..<d).map { j in (0..<keptCount).reduce(0.0) { $0 + rows[$1 * d + j] } }
            if keptCount < d { XCTAssertLessThan(TestSupport.maxAbsDifference(accumulator.sums, expectedSums), 1e-9) }
            let expected = TestSupport.gram(rows, rows: keptCount, d: d)
            XCTAssertLessThan(TestSupport.maxAbsDifference(accumulator.gram(), expected), 1e-4, "\(keptCount) rows")
            XCTAssertLessThan(TestSupport.maxAbsDifference(accumulator.sums, expectedSums), 1e-5)
        }
    }

    /// Batches that end with `endBatch` (the row block given back, a few leftover rows held in a copy,
    /// more of them reduced) add up to the same Gram and sums as rows that never stop, through every
    /// way rows arrive, while rows are kept and after.
    func testBatchEndsKeepTheGramExact() {
        let d = 8
        let batches = [3, 300, 50, 7, 260, 1, 90]
        let total = batches.reduce(0, +)
        let x = TestSupport.randomValues(total * d, seed: 23).map(Float.init)
        for blockRows in [4096, 100, 7] {
            for way in 0..<3 {
                let accumulator = GramAccumulator(dimension: d, maxBlockRows: blockRows)
                var next = 0
                for count in batches {
                    let first = next
                    switch way {
                    case 0:
                        for r in 0..<count {
                            accumulator.appendRow { row in for j in 0..<d { row[j] = x[(first + r) * d + j] } }
                        }
                    case 1:
                        accumulator.appendRows(count) { index, row in
                            for j in 0..<d { row[j] = x[(first + index) * d + j] }
                        }
                    default:
                        x.withUnsafeBufferPointer { accumulator.add(rows: $0.baseAddress! + first * d, count: count) }
                    }
                    next += count
                    accumulator.endBatch()
                }
                let rows = x.map(Double.init)
                let expected = TestSupport.gram(rows, rows: total, d: d)
                XCTAssertLessThan(
                    TestSupport.maxAbsDifference(accumulator.gram(), expected), 1e-3, "block \(blockRows), way \(way)")
                let expectedSums = (0..<d).map { j in (0..<total).reduce(0.0) { $0 + rows[$1 * d + j] } }
                XCTAssertLessThan(TestSupport.maxAbsDifference(accumulator.sums, expectedSums), 1e-4)
                XCTAssertEqual(accumulator.rowCount, total)
            }
        }
    }

    /// A sink told how many images the pass brings keeps no rows when they will reach `d` (its Gram
    /// is the same), and keeps them when they will not.
    func testExpectedImagesDecideWhetherRowsAreKept() throws {
        let d = 6
        let layer = WeightLayer(
            name: "b", source: .initializer("b"), shape: [d, 2], dtype: .float32, orientation: .inputByOutput,
            groups: 1, inputDimension: d, outputDimension: 2,
            uses: [LayerUse(node: "mm", nodeIndex: 0, isNamed: true, opType: "MatMul", input: 0, rows: .lastAxis)])
        let x = TestSupport.randomValues(8 * d, seed: 31).map(Float.init)
        // Two batches of 2 images (sequences of 2 tokens): 4 rows each.
        func run(expecting images: Int?) throws -> (rows: [[Float]?], gram: [Double]) {
            let sink = LayerRowSink(layer: layer, layerIndex: 0, positionCap: nil, seed: 0)
            sink.expectedImages = images
            for batch in 0..<2 {
                let values = Array(x[(batch * 4 * d)..<((batch + 1) * 4 * d)])
                try sink.consume(Tensor(shape: [2, 2, d], values: values), use: layer.uses[0], useIndex: 0)
            }
            let finished = sink.grams()
            return (finished.rows, finished.grams[0])
        }
        let unknown = try run(expecting: nil), enough = try run(expecting: 4), few = try run(expecting: 2)
        // 8 rows ≥ d: without a hint the rows are kept until the second batch; with one, never.
        XCTAssertNil(unknown.rows[0])
        XCTAssertNil(few.rows[0])
        XCTAssertNil(enough.rows[0])
        XCTAssertLessThan(TestSupport.maxAbsDifference(unknown.gram, enough.gram), 1e-5)
        let expected = TestSupport.gram(x.map(Double.init), rows: 8, d: d)
        XCTAssertLessThan(TestSupport.maxAbsDifference(enough.gram, expected), 1e-4)
        // A hint of 2 images (4 rows < d) keeps them until more come than it said; all of them count.
        XCTAssertLessThan(TestSupport.maxAbsDifference(few.gram, expected), 1e-4)

        let single = LayerRowSink(layer: layer, layerIndex: 0, positionCap: nil, seed: 0)
        single.expectedImages = 2
        try single.consume(Tensor(shape: [2, 2, d], values: Array(x.prefix(4 * d))), use: layer.uses[0], useIndex: 0)
        XCTAssertEqual(single.grams(gramsOfKeptRows: false).rows[0]?.count, 4 * d)

        // Told before any row, the accumulator never keeps them; told after, it reduces those it kept.
        for (told, before) in [(true, 0), (false, 0), (true, 3)] {
            let accumulator = GramAccumulator(dimension: d, maxBlockRows: 2)
            x.withUnsafeBufferPointer { accumulator.add(rows: $0.baseAddress!, count: before) }
            accumulator.expect(rows: told ? 8 : 5)
            x.withUnsafeBufferPointer { accumulator.add(rows: $0.baseAddress! + before * d, count: 1) }
            XCTAssertEqual(accumulator.keptRows == nil, told, "told \(told), \(before) rows before")
            let expected = TestSupport.gram(x.prefix((before + 1) * d).map(Double.init), rows: before + 1, d: d)
            XCTAssertLessThan(TestSupport.maxAbsDifference(accumulator.gram(), expected), 1e-4)
        }
    }

    /// Rows wider than the square block go by 256-column panels: the same Gram.
    func testWideRowsGoByColumnPanels() {
        let d = 600, n = 700
        let x = TestSupport.randomValues(n * d, seed: 29).map(Float.init)
        let square = GramAccumulator(dimension: d, maxBlockRows: 300)
        let panels = GramAccumulator(dimension: d, maxBlockRows: 300, widestSquare: 100)
        for accumulator in [square, panels] {
            x.withUnsafeBufferPointer { accumulator.add(rows: $0.baseAddress!, count: n) }
        }
        let a = square.gram(), b = panels.gram()
        XCTAssertLessThan(TestSupport.maxAbsDifference(a, b), 1e-3)
        XCTAssertEqual(a[5 * d + 590], b[590 * d + 5], accuracy: 1e-3)
        let expected = (0..<n).reduce(0.0) { $0 + Double(x[$1 * d + 5]) * Double(x[$1 * d + 590]) }
        XCTAssertEqual(b[5 * d + 590], expected, accuracy: 1e-3)
        XCTAssertLessThan(TestSupport.maxAbsDifference(square.sums, panels.sums), 1e-9)
    }

    /// Reductions split across threads (rows for square blocks, whole panels for wide rows) give the
    /// single-threaded Gram: the same bits by panels, float32 rounding apart by rows.
    func testReductionsSplitAcrossThreadsMatchOneThread() {
        defer { LinearAlgebra.setThreads(ProcessInfo.processInfo.activeProcessorCount) }
        for (d, n, widest) in [(64, 1100, 2048), (600, 300, 100)] {
            let x = TestSupport.randomValues(n * d, seed: 61).map(Float.init)
            var grams: [[Double]] = []
            for threads in [1, 3] {
                LinearAlgebra.setThreads(threads)
                let accumulator = GramAccumulator(dimension: d, maxBlockRows: 4096, widestSquare: widest)
                accumulator.expect(rows: n)
                x.withUnsafeBufferPointer { accumulator.add(rows: $0.baseAddress!, count: n) }
                grams.append(accumulator.gram())
            }
            let expected = TestSupport.gram(x.map(Double.init), rows: n, d: d)
            XCTAssertLessThan(TestSupport.maxAbsDifference(grams[1], expected), 1e-3, "d \(d)")
            if d > widest {
                XCTAssertEqual(grams[0], grams[1], "panels are the same products")
            } else {
                XCTAssertLessThan(TestSupport.maxAbsDifference(grams[0], grams[1]), 1e-3, "d \(d)")
            }
        }
    }

    func testPositionCapDrawsDistinctRepeatablePositions() {
        let a = PositionSampler.positions(total: 2000, cap: 1024, seed: 42)
        XCTAssertEqual(a.count, 1024)
        XCTAssertEqual(Set(a).count, 1024)
        XCTAssertTrue(a.allSatisfy { $0 >= 0 && $0 < 2000 })
        XCTAssertEqual(a, PositionSampler.positions(total: 2000, cap: 1024, seed: 42))
        XCTAssertNotEqual(a, PositionSampler.positions(total: 2000, cap: 1024, seed: 43))
        XCTAssertEqual(PositionSampler.positions(total: 900, cap: 1024, seed: 1), Array(0..<900))
        XCTAssertEqual(PositionSampler.positions(total: 5000, cap: nil, seed: 1).count, 5000)
    }

    func testStatisticsRoundTripAndAddUp() throws {
        var a = LayerStatistics(layer: "conv.weight", groups: 2, dimension: 2)
        a.retain = [[1, 2, 2, 5], [3, 0, 0, 3]]
        a.forget = [[1, 0, 0, 1], [2, 1, 1, 2]]
        a.retainRows = 10
        a.forgetRows = 4
        var b = LayerStatistics(layer: "fc.weight", groups: 1, dimension: 3)
        b.retain = [[1, 0, 0, 0, 1, 0, 0, 0, 1]]
        b.forget = [[2, 0, 0, 0, 2, 0, 0, 0, 2]]
        b.retainRows = 7
        b.forgetRows = 3
        a.retainSum = [[1, 2], [3, 4]]
        a.forgetSum = [[0, 1], [1, 0]]
        b.retainSum = [[1, 1, 1]]
        b.forgetSum = [[2, 2, 2]]
        let set = StatisticsSet(layers: [a, b])
        let contents = set.fileContents()
        XCTAssertEqual(
            contents.tensors.map(\.name),
            [
                "conv.weight/retain", "conv.weight/forget", "conv.weight/retain_sum", "conv.weight/forget_sum",
                "fc.weight/retain", "fc.weight/forget", "fc.weight/retain_sum", "fc.weight/forget_sum"
            ])
        XCTAssertEqual(contents.tensors[0].tensor.shape, [2, 2, 2])
        XCTAssertEqual(contents.tensors[0].tensor.dtype, .float64)
        XCTAssertEqual(contents.tensors[2].tensor.shape, [2, 2])
        XCTAssertEqual(contents.tensors[4].tensor.shape, [3, 3])
        XCTAssertEqual(contents.tensors[6].tensor.shape, [3])
        var loaded = try StatisticsSet(tensors: contents.tensors, metadata: contents.metadata)
        XCTAssertEqual(loaded.layers.map(\.layer), ["conv.weight", "fc.weight"])
        XCTAssertEqual(loaded["conv.weight"]?.retain, a.retain)
        XCTAssertEqual(loaded["conv.weight"]?.retainSum, a.retainSum)
        XCTAssertEqual(loaded["fc.weight"]?.forgetSum, b.forgetSum)
        XCTAssertEqual(loaded["fc.weight"]?.forgetRows, 3)
        try loaded.merge(set)
        XCTAssertEqual(loaded["conv.weight"]?.retain[1], [6, 0, 0, 6])
        XCTAssertEqual(loaded["conv.weight"]?.retainSum[1], [6, 8])
        XCTAssertEqual(loaded["conv.weight"]?.retainRows, 20)
        // A file written before row sums were recorded still loads, without them.
        let old = contents.tensors.filter { !$0.name.hasSuffix("_sum") }
        XCTAssertEqual(try StatisticsSet(tensors: old, metadata: contents.metadata)["fc.weight"]?.retainSum, [])

        var wrong = LayerStatistics(layer: "fc.weight", groups: 1, dimension: 2)
        wrong.retainRows = 1
        XCTAssertThrowsError(try loaded.merge(wrong))
        XCTAssertThrowsError(try StatisticsSet(tensors: contents.tensors, metadata: []))
        XCTAssertThrowsError(
            try StatisticsSet(
                tensors: [contents.tensors[0], contents.tensors[1]], metadata: [(StatisticsSet.formatKey, "1")]))
        let badShape = [
            ("x/retain", Tensor(shape: [2, 3], values: [Double](repeating: 0, count: 6))),
            ("x/forget", Tensor(shape: [2, 3], values: [Double](repeating: 0, count: 6)))
        ]
        XCTAssertThrowsError(
            try StatisticsSet(
                tensors: badShape,
                metadata: [(StatisticsSet.formatKey, "1"), ("x/retain_rows", "1"), ("x/forget_rows", "1")]))
    }
}

final class StatisticsFileTests: XCTestCase {
    func testSaveLoadAndAddShards() throws {
        var layer = LayerStatistics(layer: "blocks.0.fc1.weight", groups: 1, dimension: 2)
        layer.retain = [[4, 1, 1, 3]]
        layer.forget = [[1, 0, 0, 2]]
        layer.retainRows = 12
        layer.forgetRows = 5
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("lethe-stats-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let first = folder.appendingPathComponent("a.safetensors").path,
            second = folder.appendingPathComponent("b.safetensors").path
        try StatisticsSet(layers: [layer]).save(to: first)
        try StatisticsSet(layers: [layer]).save(to: second)
        let loaded = try StatisticsSet.load(from: first)
        XCTAssertEqual(loaded["blocks.0.fc1.weight"]?.retain, [[4, 1, 1, 3]])
        XCTAssertEqual(loaded["blocks.0.fc1.weight"]?.forgetRows, 5)
        let summed = try StatisticsSet.load(adding: [first, second])
        XCTAssertEqual(summed["blocks.0.fc1.weight"]?.forget, [[2, 0, 0, 4]])
        XCTAssertEqual(summed["blocks.0.fc1.weight"]?.retainRows, 24)
        // A safetensors file that is not a statistics file is refused with its path.
        let other = folder.appendingPathComponent("c.safetensors").path
        try SafetensorsFormat.write(
            Model(graph: Graph(initializers: [Initializer(name: "w", tensor: Tensor(shape: [1], values: [Float(1)]))])),
            to: other)
        XCTAssertThrowsError(try StatisticsSet.load(from: other)) { error in
            XCTAssertTrue(String(describing: error).contains("c.safetensors"))
        }
    }
}
