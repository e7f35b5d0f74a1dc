import CVectorMath
import LetheCore
import LetheIR
import XCTest
@testable import LetheRuntime

/// `ProductPrecision.bfloat16`: the conversion's rounding, and layers' products over operands
/// rounded to bfloat16, checked against float64 sums of the same rounded operands.
final class BFloat16ProductTests: XCTestCase {
    /// The conversion by definition, on the float's bits: nearest, ties to even; denormals to zeros
    /// of their sign (the AVX512_BF16 instruction reads them as zero).
    private func reference(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        if value.isNaN { return UInt16(bits >> 16) | 0x40 }
        if bits & 0x7f80_0000 == 0 { return UInt16(bits >> 16) & 0x8000 }
        return UInt16((bits &+ 0x7fff &+ ((bits >> 16) & 1)) >> 16)
    }

    private func converted(_ values: [Float]) -> [UInt16] {
        var result = [UInt16](repeating: 0xffff, count: values.count)
        lethe_bfloat16_from_float(values, &result, values.count)
        return result
    }

    private func widened(_ half: UInt16) -> Float { Float(bitPattern: UInt32(half) << 16) }

    func testConversionRoundsToNearestEven() {
        let cases: [(Float, UInt16)] = [
            (1, 0x3f80), (-2, 0xc000), (0, 0), (-0.0, 0x8000),
            (Float(bitPattern: 0x3f80_8000), 0x3f80), // halfway, even below: stays
            (Float(bitPattern: 0x3f81_8000), 0x3f82), // halfway, odd below: up to even
            (Float(bitPattern: 0x3f80_8001), 0x3f81), // past halfway
            (Float(bitPattern: 0xbf80_7fff), 0xbf80), // short of halfway, negative
            (Float(bitPattern: 0x7f7f_ffff), 0x7f80), // the largest float rounds to infinity
            (.infinity, 0x7f80), (-.infinity, 0xff80),
            (Float(bitPattern: 0x0000_0001), 0), (Float(bitPattern: 0x8040_0000), 0x8000), // denormals
            (Float(bitPattern: 0x0080_0000), 0x0080) // the smallest normal float
        ]
        // 32 values a vector step: each case in the vector body and in the scalar tail.
        for count in [1, 31, 32, 33, 70] {
            for (value, expected) in cases {
                XCTAssertEqual(
                    converted(Array(repeating: value, count: count)), Array(repeating: expected, count: count),
                    "\(value.bitPattern) × \(count)")
            }
        }
        for nan in [Float.nan, Float(bitPattern: 0x7f80_0001), Float(bitPattern: 0xffc0_1234)] {
            XCTAssertTrue(converted(Array(repeating: nan, count: 40)).allSatisfy { widened($0).isNaN })
        }
        var state: UInt64 = 0x9e37_79b9_7f4a_7c15
        let values = (0..<10_003).map { _ -> Float in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let value = Float(bitPattern: UInt32(truncatingIfNeeded: state >> 29))
            return value.isNaN ? 1 : value
        }
        XCTAssertEqual(converted(values), values.map(reference))
    }

    /// `y = activation(rounded(x) · rounded(W) + bias)`, summed in float64 from the rounded operands.
    private func expected(
        _ x: [Float], _ w: [Float], _ bias: [Float], rows: Int, inner: Int, outer: Int, transposed: Bool, relu: Bool
    ) -> [Float] {
        let x = x.map { Double(widened(reference($0))) }, w = w.map { Double(widened(reference($0))) }
        var y = [Float](repeating: 0, count: rows * outer)
        for r in 0..<rows {
            for c in 0..<outer {
                var sum = Double(bias[c])
                for k in 0..<inner { sum += x[r * inner + k] * w[transposed ? c * inner + k : k * outer + c] }
                y[r * outer + c] = Float(relu ? max(0, sum) : sum)
            }
        }
        return y
    }

    func testLinearLayerMultipliesOperandsRoundedToBFloat16() throws {
        try XCTSkipUnless(ProductPrecision.bfloat16Available, "this CPU has no native bfloat16 products")
        // Rows in whole blocks of `bfloat16Block` and a remainder, and fewer rows than one block.
        let cases = [
            (rows: 2 * DNNLMatMul.bfloat16Block + 37, inner: 96, outer: 40, transposed: true, relu: true),
            (rows: 300, inner: 64, outer: 48, transposed: false, relu: false),
            (rows: 17, inner: 128, outer: 16, transposed: true, relu: false)
        ]
        for (index, g) in cases.enumerated() {
            let seed = UInt64(index * 10)
            let x = randomFloats(g.rows * g.inner, seed: seed), w = randomFloats(g.inner * g.outer, seed: seed + 1)
            let bias = randomFloats(g.outer, seed: seed + 2)
            let weight = Tensor(shape: g.transposed ? [g.outer, g.inner] : [g.inner, g.outer], values: w)
            let matmul = try XCTUnwrap(
                DNNLMatMul(
                    weight: weight, transposed: g.transposed, bias: Tensor(shape: [g.outer], values: bias),
                    activation: g.relu ? .relu : nil, precision: .bfloat16))
            XCTAssertTrue(matmul.bfloat16)
            let implementation = try XCTUnwrap(matmul.implementation(rows: min(g.rows, DNNLMatMul.bfloat16Block)))
            XCTAssertTrue(implementation.contains("bf16") || implementation.contains("amx"), implementation)
            let want = expected(
                x, w, bias, rows: g.rows, inner: g.inner, outer: g.outer, transposed: g.transposed, relu: g.relu)
            let exact = try XCTUnwrap(
                DNNLMatMul(
                    weight: weight, transposed: g.transposed, bias: Tensor(shape: [g.outer], values: bias),
                    activation: g.relu ? .relu : nil))
            for threads in [1, 2] {
                var y = [Float](repeating: .nan, count: g.rows * g.outer)
                var float32 = y
                XCTAssertTrue(try matmul.run(rows: g.rows, x: x, y: &y, threads: threads))
                XCTAssertTrue(try exact.run(rows: g.rows, x: x, y: &float32, threads: threads))
                // Float32 accumulation of products that bfloat16 operands make exact.
                XCTAssertLessThanOrEqual(relativeError(y, want), 1e-5, "\(g) threads \(threads)")
                // And the rounding happened: float32 operands land measurably elsewhere.
                XCTAssertGreaterThan(relativeError(float32, want), 1e-4, "\(g) threads \(threads)")
            }
        }
    }

    /// A session in bfloat16 runs its layers' products in it (outputs near float32's, not equal)
    /// and leaves the rest of the graph alone; on a CPU without bfloat16 it is float32 exactly.
    func testSessionRunsLayersInBFloat16WhenAsked() throws {
        var b = GraphBuilder()
        b.input("x", [nil, 8, 64])
        b.constant("w1", randomTensor([64, 96], seed: 1))
        b.constant("b1", randomTensor([96], seed: 2))
        b.constant("w2", randomTensor([10, 96], seed: 3))
        b.constant("b2", randomTensor([10], seed: 4))
        b.constant("shape", Tensor(shape: [2], values: [-1, 96] as [Int64]))
        b.node("MatMul", ["x", "w1"], ["h"])
        b.node("Add", ["h", "b1"], ["hb"])
        b.node("Relu", ["hb"], ["r"])
        b.node("Reshape", ["r", "shape"], ["flat"])
        b.node("Gemm", ["flat", "w2", "b2"], ["y"], [("transB", .int(1))])
        b.output("y")
        let x = randomTensor([40, 8, 64], seed: 5)
        let float32 = try InferenceSession(model: b.model, options: .init(threads: 2)).run(["x": x])["y"]!
        let bfloat16 = try InferenceSession(model: b.model, options: .init(threads: 2, precision: .bfloat16))
            .run(["x": x])["y"]!
        XCTAssertEqual(bfloat16.shape, [320, 10])
        let error = relativeError(bfloat16.floatValues(), float32.floatValues())
        if ProductPrecision.bfloat16Available {
            XCTAssertGreaterThan(error, 1e-5)
            XCTAssertLessThan(error, 3e-2)
        } else {
            XCTAssertEqual(error, 0)
        }
    }
}
