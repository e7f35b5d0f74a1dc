import LetheCore
import LetheIR
import XCTest
@testable import LetheRuntime
#if canImport(Glibc)
import Glibc
#endif

final class KernelTests: XCTestCase {
    private func runSingle(
        _ op: String, inputs: [(String, Tensor)], constants: [(String, Tensor)] = [],
        attributes: [(String, Attribute)] = [], outputs: Int = 1, opset: Int = 17,
        threads: Int = 2
    ) throws -> [Tensor] {
        var g = GraphBuilder()
        g.opset = opset
        for (name, t) in inputs { g.input(name, t.shape, dtype: t.dtype) }
        for (name, t) in constants { g.constant(name, t) }
        let outs = (0..<outputs).map { "y\($0)" }
        g.node(op, inputs.map(\.0) + constants.map(\.0), outs, attributes)
        outs.forEach { g.output($0) }
        let session = try InferenceSession(model: g.model, options: .init(threads: threads))
        let result = try session.run(Dictionary(uniqueKeysWithValues: inputs))
        return outs.map { result[$0]! }
    }

    func testConvMatchesDefinitionAcrossStridesPadsDilationsGroups() throws {
        let cases: [(c: Int, m: Int, k: Int, stride: Int, pad: Int, dilation: Int, group: Int, n: Int, size: Int)] = [
            (3, 8, 3, 1, 1, 1, 1, 2, 9), (4, 6, 3, 2, 1, 1, 2, 3, 8), (8, 8, 3, 1, 1, 1, 8, 2, 7),
            (5, 4, 1, 1, 0, 1, 1, 4, 6), (3, 4, 3, 2, 2, 2, 1, 1, 11), (6, 12, 5, 1, 2, 1, 3, 1, 5),
            (2, 3, 2, 3, 0, 1, 1, 70, 4)
        ]
        for (index, t) in cases.enumerated() {
            let x = randomTensor([t.n, t.c, t.size, t.size], seed: UInt64(index))
            let w = randomTensor([t.m, t.c / t.group, t.k, t.k], seed: UInt64(100 + index))
            let b = randomFloats(t.m, seed: UInt64(200 + index))
            let attributes: [(String, Attribute)] = [
                ("strides", .ints([t.stride, t.stride])), ("pads", .ints([t.pad, t.pad, t.pad, t.pad])),
                ("dilations", .ints([t.dilation, t.dilation])), ("group", .int(t.group))
            ]
            let y = try runSingle(
                "Conv", inputs: [("x", x)], constants: [("w", w), ("b", Tensor(shape: [t.m], values: b))],
                attributes: attributes)[0]
            let expected = naiveConv(
                x, w, b, stride: [t.stride, t.stride], pads: Array(repeating: t.pad, count: 4),
                dilation: [t.dilation, t.dilation], group: t.group)
            assertClose(y, expected.values, shape: expected.shape)
            // The same with the weight as a run-time input.
            var g = GraphBuilder()
            g.input("x", x.shape); g.input("w", w.shape)
            g.node("Conv", ["x", "w"], ["y"], attributes)
            g.output("y")
            let y2 = try InferenceSession(model: g.model, options: .init(threads: 1)).run(["x": x, "w": w])["y"]!
            let unbiased = naiveConv(
                x, w, nil, stride: [t.stride, t.stride], pads: Array(repeating: t.pad, count: 4),
                dilation: [t.dilation, t.dilation], group: t.group)
            assertClose(y2, unbiased.values, shape: unbiased.shape)
        }
    }

    func testConvSameUpperAutoPadAnd1D() throws {
        let x = randomTensor([1, 2, 5, 5], seed: 1), w = randomTensor([3, 2, 3, 3], seed: 2)
        let y = try runSingle(
            "Conv", inputs: [("x", x)], constants: [("w", w)],
            attributes: [("auto_pad", .string(Array("SAME_UPPER".utf8))), ("strides", .ints([2, 2]))])[0]
        // out = ceil(5/2) = 3, total pad = (3-1)*2+3-5 = 2 -> 1 each side.
        let expected = naiveConv(x, w, nil, stride: [2, 2], pads: [1, 1, 1, 1], dilation: [1, 1], group: 1)
        assertClose(y, expected.values, shape: expected.shape)

        let x1 = randomTensor([2, 3, 10], seed: 3), w1 = randomTensor([4, 3, 3], seed: 4)
        let y1 = try runSingle(
            "Conv", inputs: [("x", x1)], constants: [("w", w1)], attributes: [("pads", .ints([1, 1]))])[0]
        let as2D = naiveConv(
            x1.reshaped([2, 3, 1, 10]), w1.reshaped([4, 3, 1, 3]), nil, stride: [1, 1],
            pads: [0, 1, 0, 1], dilation: [1, 1], group: 1)
        assertClose(y1, as2D.values, shape: [2, 4, 10])
    }

    func testGemmAllTransposesAlphaBeta() throws {
        let a = randomTensor([3, 4], seed: 5), b = randomTensor([4, 5], seed: 6), c = randomTensor([5], seed: 7)
        let av = a.floatValues(), bv = b.floatValues(), cv = c.floatValues()
        var expected = [Float](repeating: 0, count: 15)
        for i in 0..<3 {
            for j in 0..<5 {
                var s: Float = 0
                for k in 0..<4 { s += av[i * 4 + k] * bv[k * 5 + j] }
                expected[i * 5 + j] = 0.5 * s + 2 * cv[j]
            }
        }
        func transposed(_ t: Tensor) -> Tensor {
            let v = t.floatValues(), r = t.shape[0], q = t.shape[1]
            return Tensor(shape: [q, r], values: (0..<(r * q)).map { v[($0 % r) * q + $0 / r] })
        }
        for (ta, tb) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
            let y = try runSingle(
                "Gemm", inputs: [("a", ta == 1 ? transposed(a) : a)],
                constants: [("b", tb == 1 ? transposed(b) : b), ("c", c)],
                attributes: [("transA", .int(ta)), ("transB", .int(tb)), ("alpha", .float(0.5)), ("beta", .float(2))])[
                    0]
            assertClose(y, expected, shape: [3, 5])
        }
    }

    func testBatchedBroadcastMatMul() throws {
        let a = randomTensor([2, 1, 3, 4], seed: 8), b = randomTensor([3, 4, 2], seed: 9)
        let y = try runSingle("MatMul", inputs: [("a", a), ("b", b)])[0]
        XCTAssertEqual(y.shape, [2, 3, 3, 2])
        let av = a.floatValues(), bv = b.floatValues(), yv = y.floatValues()
        for i in 0..<2 {
            for j in 0..<3 {
                for r in 0..<3 {
                    for col in 0..<2 {
                        var s: Float = 0
                        for k in 0..<4 { s += av[(i * 3 + r) * 4 + k] * bv[(j * 4 + k) * 2 + col] }
                        XCTAssertEqual(yv[((i * 3 + j) * 3 + r) * 2 + col], s, accuracy: 1e-5)
                    }
                }
            }
        }
        let v = randomTensor([4], seed: 10)
        let y1 = try runSingle("MatMul", inputs: [("a", a), ("v", v)])[0]
        XCTAssertEqual(y1.shape, [2, 1, 3])
    }

    func testBroadcastArithmeticAndComparisons() throws {
        let a = Tensor(shape: [2, 3], values: [Float](arrayLiteral: 1, 2, 3, 4, 5, 6))
        let b = Tensor(shape: [3], values: [Float](arrayLiteral: 10, 20, 30))
        assertClose(try runSingle("Add", inputs: [("a", a), ("b", b)])[0], [11, 22, 33, 14, 25, 36], shape: [2, 3])
        assertClose(try runSingle("Sub", inputs: [("a", a), ("b", b)])[0], [-9, -18, -27, -6, -15, -24])
        let column = Tensor(shape: [2, 1], values: [Float](arrayLiteral: 2, 4))
        assertClose(try runSingle("Div", inputs: [("a", a), ("c", column)])[0], [0.5, 1, 1.5, 1, 1.25, 1.5])
        assertClose(try runSingle("Pow", inputs: [("a", a), ("c", column)])[0], [1, 4, 9, 256, 625, 1296])
        let less = try runSingle("Less", inputs: [("a", a), ("d", Tensor(scalar: Float(3.5)))])[0]
        XCTAssertEqual(less.dtype, .bool)
        XCTAssertEqual(less.int64Values(), [1, 1, 1, 0, 0, 0])
        let ints = try runSingle(
            "Mul", inputs: [("a", Tensor(shape: [2], values: [Int64(3), 4])), ("b", Tensor(scalar: Int64(-2)))])[0]
        XCTAssertEqual(ints.int64Values(), [-6, -8])
        let mean = try runSingle("Mean", inputs: [("a", a), ("b", b), ("c", column)])[0]
        let meanExpected: [Float] = [13, 24, 35, 18, 29, 40]
        assertClose(mean, meanExpected.map { $0 / 3 }, tolerance: 1e-6)
    }

    func testSoftmaxOpsetSemantics() throws {
        let x = Tensor(shape: [2, 2], values: [Float](arrayLiteral: 0, 1, 2, 3))
        let x3 = x.reshaped([1, 2, 2])
        // opset 13: along the last axis only.
        let y13 = try runSingle("Softmax", inputs: [("x", x3)], attributes: [("axis", .int(1))], opset: 13)[0]
        let e = { (v: Float) in expf(v) }
        assertClose(y13, [e(0) / (e(0) + e(2)), e(1) / (e(1) + e(3)), e(2) / (e(0) + e(2)), e(3) / (e(1) + e(3))])
        // opset 11: flattened from axis 1 on.
        let y11 = try runSingle("Softmax", inputs: [("x", x3)], attributes: [("axis", .int(1))], opset: 11)[0]
        let total = e(0) + e(1) + e(2) + e(3)
        assertClose(y11, [e(0) / total, e(1) / total, e(2) / total, e(3) / total])
        let log = try runSingle("LogSoftmax", inputs: [("x", x)], opset: 13)[0]
        assertClose(log, [0 - logf(e(0) + e(1)), 1 - logf(e(0) + e(1)), 2 - logf(e(2) + e(3)), 3 - logf(e(2) + e(3))])
    }

    func testLayoutOperators() throws {
        let x = Tensor(shape: [2, 3, 4], values: (0..<24).map { Float($0) })
        let t = try runSingle("Transpose", inputs: [("x", x)], attributes: [("perm", .ints([2, 0, 1]))])[0]
        XCTAssertEqual(t.shape, [4, 2, 3])
        XCTAssertEqual(t.floatValues()[0..<6].map { $0 }, [0, 4, 8, 12, 16, 20])
        let r = try runSingle("Reshape", inputs: [("x", x)], constants: [("s", Tensor.int64([0, -1]))])[0]
        XCTAssertEqual(r.shape, [2, 12])
        let s = try runSingle(
            "Slice", inputs: [("x", x)],
            constants: [
                ("st", Tensor.int64([-1, 3])), ("en", Tensor.int64([-100, 0])),
                ("ax", Tensor.int64([2, 1])), ("sp", Tensor.int64([-2, -2]))
            ])[0]
        XCTAssertEqual(s.shape, [2, 1, 2])
        XCTAssertEqual(s.floatValues(), [11, 9, 23, 21])
        let gathered = try runSingle(
            "Gather", inputs: [("x", x)], constants: [("i", Tensor.int64([2, -1], shape: [2]))],
            attributes: [("axis", .int(1))])[0]
        XCTAssertEqual(gathered.shape, [2, 2, 4])
        XCTAssertEqual(gathered.floatValues()[0..<8].map { $0 }, [8, 9, 10, 11, 8, 9, 10, 11])
        let c = try runSingle("Concat", inputs: [("x", x), ("z", x)], attributes: [("axis", .int(-1))])[0]
        XCTAssertEqual(c.shape, [2, 3, 8])
        XCTAssertEqual(c.floatValues()[0..<8].map { $0 }, [0, 1, 2, 3, 0, 1, 2, 3])
        let parts = try runSingle(
            "Split", inputs: [("x", x)], constants: [("sizes", Tensor.int64([1, 2]))], attributes: [("axis", .int(1))],
            outputs: 2)
        XCTAssertEqual(parts.map(\.shape), [[2, 1, 4], [2, 2, 4]])
        XCTAssertEqual(parts[1].floatValues()[0], 4)
        let p = try runSingle(
            "Pad", inputs: [("x", Tensor(shape: [1, 3], values: [Float](arrayLiteral: 1, 2, 3)))],
            constants: [("pads", Tensor.int64([0, 2, 0, 1]))], attributes: [("mode", .string(Array("reflect".utf8)))])[
                0]
        XCTAssertEqual(p.floatValues(), [3, 2, 1, 2, 3, 2])
        let e = try runSingle(
            "Expand", inputs: [("x", Tensor(shape: [3, 1], values: [Float](arrayLiteral: 1, 2, 3)))],
            constants: [("s", Tensor.int64([2, 1, 2]))])[0]
        XCTAssertEqual(e.shape, [2, 3, 2])
        XCTAssertEqual(e.floatValues(), [1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3])
        let tile = try runSingle(
            "Tile", inputs: [("x", Tensor(shape: [2], values: [Float](arrayLiteral: 1, 2)))],
            constants: [("r", Tensor.int64([3]))])[0]
        XCTAssertEqual(tile.floatValues(), [1, 2, 1, 2, 1, 2])
    }

    func testPoolingAndReductions() throws {
        let x = Tensor(shape: [1, 1, 3, 3], values: (1...9).map { Float($0) })
        let m = try runSingle(
            "MaxPool", inputs: [("x", x)],
            attributes: [("kernel_shape", .ints([2, 2])), ("strides", .ints([2, 2])), ("ceil_mode", .int(1))])[0]
        XCTAssertEqual(m.shape, [1, 1, 2, 2])
        XCTAssertEqual(m.floatValues(), [5, 6, 8, 9])
        let a = try runSingle(
            "AveragePool", inputs: [("x", x)],
            attributes: [("kernel_shape", .ints([2, 2])), ("pads", .ints([1, 1, 1, 1])), ("strides", .ints([2, 2]))])[0]
        XCTAssertEqual(a.floatValues(), [1, 2.5, 5.5, 7])
        let ai = try runSingle(
            "AveragePool", inputs: [("x", x)],
            attributes: [
                ("kernel_shape", .ints([2, 2])), ("pads", .ints([1, 1, 1, 1])), ("strides", .ints([2, 2])),
                ("count_include_pad", .int(1))
            ])[0]
        XCTAssertEqual(ai.floatValues(), [0.25, 1.25, 2.75, 7])
        let g = try runSingle("GlobalAveragePool", inputs: [("x", x)])[0]
        XCTAssertEqual(g.floatValues(), [5])
        let r = try runSingle("ReduceMean", inputs: [("x", x)], constants: [("axes", Tensor.int64([-1]))], opset: 18)[0]
        XCTAssertEqual(r.shape, [1, 1, 3, 1])
        XCTAssertEqual(r.floatValues(), [2, 5, 8])
        let r11 = try runSingle(
            "ReduceSum", inputs: [("x", x)], attributes: [("axes", .ints([2])), ("keepdims", .int(0))], opset: 11)[0]
        XCTAssertEqual(r11.floatValues(), [12, 15, 18])
        let arg = try runSingle("ArgMax", inputs: [("x", x)], attributes: [("axis", .int(2))])[0]
        XCTAssertEqual(arg.int64Values(), [2, 2, 2])
    }

    func testLayerNormAndEinsum() throws {
        let x = Tensor(shape: [2, 3], values: [Float](arrayLiteral: 1, 2, 3, 2, 4, 9))
        let y = try runSingle(
            "LayerNormalization", inputs: [("x", x)],
            constants: [
                ("s", Tensor(shape: [3], values: [Float](arrayLiteral: 1, 2, 1))),
                ("b", Tensor(shape: [3], values: [Float](arrayLiteral: 0, 1, 0)))
            ])[0]
        let v = x.floatValues()
        var expected: [Float] = []
        for r in 0..<2 {
            let row = Array(v[(r * 3)..<(r * 3 + 3)])
            let mean = row.reduce(0, +) / 3
            let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 3
            let inv = 1 / (variance + 1e-5).squareRoot()
            expected += [(row[0] - mean) * inv, (row[1] - mean) * inv * 2 + 1, (row[2] - mean) * inv]
        }
        assertClose(y, expected)
        let q = randomTensor([2, 3, 4, 5], seed: 11), k = randomTensor([2, 3, 6, 5], seed: 12)
        let e = try runSingle(
            "Einsum", inputs: [("q", q), ("k", k)], attributes: [("equation", .string(Array("bhid,bhjd->bhij".utf8)))])[
                0]
        XCTAssertEqual(e.shape, [2, 3, 4, 6])
        let qv = q.floatValues(), kv = k.floatValues(), ev = e.floatValues()
        var s: Float = 0
        for d in 0..<5 { s += qv[((1 * 3 + 2) * 4 + 3) * 5 + d] * kv[((1 * 3 + 2) * 6 + 4) * 5 + d] }
        XCTAssertEqual(ev[((1 * 3 + 2) * 4 + 3) * 6 + 4], s, accuracy: 1e-5)
        let trace = try runSingle(
            "Einsum", inputs: [("q", q)], attributes: [("equation", .string(Array("...ij->...j".utf8)))])[0]
        XCTAssertEqual(trace.shape, [2, 3, 5])
    }

    /// LayerNormalization over rows of every width around the 16-lane edges and a ViT-B row, with
    /// and without a bias, a row far from zero (moments in double keep its deviation exact; the mean
    /// is then a float, as in ONNX Runtime, which x − mean inherits), and the mean and inverse
    /// deviation outputs: against float64.
    func testLayerNormRowsOfEveryWidthMatchFloat64() throws {
        for inner in [1, 15, 16, 17, 64, 100, 768] {
            for withBias in [false, true] {
                let rows = 7
                let x = Tensor(
                    shape: [rows, inner],
                    values: randomFloats(rows * inner, seed: UInt64(inner)).enumerated().map { i, v in
                        i / inner == 3 ? 1000 + v * 0.01 : v * 3
                    })
                let scale = randomTensor([inner], seed: 5), bias = randomTensor([inner], seed: 6)
                let outputs = try runSingle(
                    "LayerNormalization", inputs: [("x", x)],
                    constants: [("s", scale)] + (withBias ? [("b", bias)] : []), outputs: 3)
                let v = x.floatValues(), sv = scale.floatValues(), bv = bias.floatValues()
                for r in 0..<rows {
                    let row = v[(r * inner)..<((r + 1) * inner)].map(Double.init)
                    let mean = row.reduce(0, +) / Double(inner)
                    let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(inner)
                    let inv = 1 / (variance + 1e-5).squareRoot()
                    XCTAssertEqual(Double(outputs[1].floatValues()[r]), mean, accuracy: 1e-6 * max(1, abs(mean)))
                    XCTAssertEqual(Double(outputs[2].floatValues()[r]), inv, accuracy: 1e-5 * inv)
                    for i in 0..<inner {
                        let centered = row[i] - Double(Float(mean))
                        let expected = centered * inv * Double(sv[i]) + (withBias ? Double(bv[i]) : 0)
                        XCTAssertEqual(
                            Double(outputs[0].floatValues()[r * inner + i]), expected, accuracy: 2e-4,
                            "width \(inner) bias \(withBias) [\(r), \(i)]")
                    }
                }
            }
        }
    }

    func testUnsupportedOperatorsAreAllListed() throws {
        var g = GraphBuilder()
        g.input("x", [1, 4])
        g.node("Relu", ["x"], ["a"])
        g.node("LSTM", ["a"], ["b"], name: "rnn")
        g.node("Resize", ["b"], ["c"], name: "up", [("mode", .string(Array("cubic".utf8)))])
        g.node("Custom", ["c"], ["d"], name: "mine")
        g.nodes[3].domain = "com.example"
        g.output("d")
        XCTAssertThrowsError(try InferenceSession(model: g.model)) { error in
            guard let error = error as? UnsupportedOperatorError else { return XCTFail("\(error)") }
            XCTAssertEqual(error.issues.map(\.node), ["rnn", "up", "mine"])
            XCTAssertTrue(error.issues[1].reason.contains("cubic"))
        }
    }

    func testRuntimeErrorsNameTheNode() throws {
        var g = GraphBuilder()
        g.input("x", [nil, 4])
        g.constant("s", Tensor.int64([3, 5]))
        g.node("Reshape", ["x", "s"], ["y"], name: "bad_reshape")
        g.output("y")
        let session = try InferenceSession(model: g.model)
        XCTAssertThrowsError(try session.run(["x": randomTensor([2, 4], seed: 1)])) { error in
            XCTAssertEqual((error as? RuntimeError)?.node, "bad_reshape")
        }
        XCTAssertThrowsError(try session.run(["x": randomTensor([2, 5], seed: 1)]))
        XCTAssertThrowsError(try session.run(["nope": randomTensor([2, 4], seed: 1)]))
    }
}
