import Dispatch
import LetheCore
import LetheIR
import XCTest
@testable import LetheRuntime

/// The oneDNN matmul path of Gemm and MatMul with constant weights against the `MatrixMultiply`
/// path they fall back to, and the cases that must stay on the fallback.
final class DNNLMatMulTests: XCTestCase {
    private struct GemmCase {
        var rows: Int
        var inner: Int
        var outer: Int
        var transposeB = false
        var alpha: Float = 1
        var beta: Float = 1
        /// Shape of the constant C, nil for no C.
        var c: [Int]? = nil
        var activation: Activation? = nil
    }

    private func gemmKernels(_ g: GemmCase, seed: UInt64) throws -> (dnnl: GemmKernel, plain: GemmKernel, a: Tensor) {
        let a = randomTensor([g.rows, g.inner], seed: seed)
        let b = randomTensor(g.transposeB ? [g.outer, g.inner] : [g.inner, g.outer], seed: seed + 1)
        let c = g.c.map { randomTensor($0, seed: seed + 2) }
        let node = Node(
            name: "gemm", opType: "Gemm", inputs: c == nil ? ["a", "b"] : ["a", "b", "c"], outputs: ["y"],
            attributes: [
                ("transB", .int(g.transposeB ? 1 : 0)), ("alpha", .float(g.alpha)), ("beta", .float(g.beta))
            ])
        let request = KernelRequest(
            node: node, opset: 17, constants: [nil, b] + (c.map { [$0] } ?? []), activation: g.activation)
        return (try GemmKernel(request), try GemmKernel(request, allowDNNL: false), a)
    }

    private func check(_ g: GemmCase, seed: UInt64, file: StaticString = #filePath, line: UInt = #line) throws {
        let (dnnl, plain, a) = try gemmKernels(g, seed: seed)
        XCTAssertNil(plain.dnnl, file: file, line: line)
        let matmul = try XCTUnwrap(dnnl.dnnl, "\(g) stays off oneDNN", file: file, line: line)
        XCTAssertTrue(DNNLMatMul.pays(rows: g.rows, matmul), "\(g) is too small to test", file: file, line: line)
        let implementation = try matmul.implementation(rows: g.rows)
        XCTAssertFalse(implementation?.hasPrefix("ref") ?? true, "\(g): \(implementation ?? "refused")")
        for threads in [1, 2] {
            let context = ExecutionContext(threads: threads)
            let expected = try plain.run([a, nil, nil], context)[0]
            let actual = try dnnl.run([a, nil, nil], context)[0]
            XCTAssertEqual(actual.shape, expected.shape, file: file, line: line)
            XCTAssertLessThanOrEqual(
                relativeError(actual.floatValues(), expected.floatValues()), 1e-5, "\(g) threads \(threads)",
                file: file, line: line)
        }
    }

    /// The fallback's C: a constant row vector (or scalar) fills the output before the product, a C
    /// that varies down the rows is broadcast; both against the formula.
    func testFallbackAddsBetaTimesC() throws {
        for (cShape, beta) in [([5], Float(0.5)), ([1, 5], 1), ([1], 2), ([3, 5], 0.25), ([3, 1], 1), ([5], 0)] {
            let g = GemmCase(rows: 3, inner: 4, outer: 5, transposeB: true, alpha: 1.5, beta: beta, c: cShape)
            let (_, plain, a) = try gemmKernels(g, seed: 11)
            let b = try XCTUnwrap(plain.b).floatValues(), c = try XCTUnwrap(plain.c).floatValues()
            let x = a.floatValues()
            let got = try plain.run([a, nil, nil], ExecutionContext(threads: 2))[0].floatValues()
            for i in 0..<3 {
                for j in 0..<5 {
                    var sum: Float = 0
                    for k in 0..<4 { sum += x[i * 4 + k] * b[j * 4 + k] }
                    let ci = cShape.count == 2 && cShape[0] == 3 ? i : 0
                    let cj = cShape.last == 5 ? j : 0
                    let expected = 1.5 * sum + beta * c[ci * (cShape.last ?? 1) + cj]
                    XCTAssertEqual(got[i * 5 + j], expected, accuracy: 1e-5, "C \(cShape), beta \(beta)")
                }
            }
        }
    }

    func testLinearLayersAgreeWithMatrixMultiply() throws {
        // The sample CNN's two layers, batch 64 and the last chunk's odd batch.
        try check(GemmCase(rows: 64, inner: 1568, outer: 128, transposeB: true, c: [128], activation: .relu), seed: 1)
        try check(GemmCase(rows: 47, inner: 1568, outer: 128, transposeB: true, c: [128], activation: .relu), seed: 2)
        try check(GemmCase(rows: 64, inner: 128, outer: 10, transposeB: true, c: [10]), seed: 3)
        // One row, odd sizes, untransposed weights, no C.
        try check(GemmCase(rows: 1, inner: 301, outer: 257), seed: 4)
        try check(GemmCase(rows: 33, inner: 77, outer: 45), seed: 5)
    }

    func testScalesAndBroadcastBiasesAgreeWithMatrixMultiply() throws {
        try check(GemmCase(rows: 9, inner: 100, outer: 90, alpha: 0.5, beta: 2, c: [1, 90]), seed: 10)
        try check(GemmCase(rows: 9, inner: 100, outer: 90, transposeB: true, alpha: -1.5, beta: 0.25, c: [1]), seed: 11)
        try check(GemmCase(rows: 17, inner: 100, outer: 90, c: []), seed: 12)
        try check(GemmCase(rows: 17, inner: 100, outer: 90, c: [1, 1]), seed: 13)
        // beta 0 ignores C entirely.
        try check(GemmCase(rows: 17, inner: 100, outer: 90, beta: 0, c: [90]), seed: 14)
    }

    func testFusedAndUnfusedActivationsAgreeWithMatrixMultiply() throws {
        // ReLU, leaky ReLU and clip run as oneDNN post-ops; GELU and sigmoid after each slice.
        let activations: [Activation] = [
            .relu, .leakyRelu(alpha: 0.1), .clip(min: -0.5, max: 0.5), .gelu(tanhApproximation: false), .sigmoid
        ]
        for (index, activation) in activations.enumerated() {
            try check(
                GemmCase(rows: 65, inner: 64, outer: 192, c: [192], activation: activation), seed: 20 + UInt64(index))
        }
    }

    /// A constant 2-D right-hand side of MatMul, with A of rank 1 to 3, a fused bias and activation.
    func testMatMulWithConstantWeightsAgreesWithMatrixMultiply() throws {
        let weight = randomTensor([256, 300], seed: 30), bias = randomTensor([300], seed: 31)
        let node = Node(name: "mm", opType: "MatMul", inputs: ["a", "w"], outputs: ["y"])
        for (index, shape) in [[256], [5, 256], [3, 50, 256]].enumerated() {
            for activation in [nil, Activation.relu, .gelu(tanhApproximation: true)] {
                let request = KernelRequest(
                    node: node, opset: 17, constants: [nil, weight], activation: activation, fusedBias: bias)
                let dnnl = try MatMulKernel(request), plain = try MatMulKernel(request, allowDNNL: false)
                let matmul = try XCTUnwrap(dnnl.dnnl)
                XCTAssertTrue(DNNLMatMul.pays(rows: shape.dropLast().reduce(1, *), matmul))
                let a = randomTensor(shape, seed: 40 + UInt64(index))
                for threads in [1, 2] {
                    let context = ExecutionContext(threads: threads)
                    let expected = try plain.run([a, nil], context)[0]
                    let actual = try dnnl.run([a, nil], context)[0]
                    XCTAssertEqual(actual.shape, expected.shape)
                    XCTAssertLessThanOrEqual(
                        relativeError(actual.floatValues(), expected.floatValues()), 1e-5,
                        "\(shape) \(String(describing: activation)) threads \(threads)")
                }
            }
        }
    }

    /// Transposed A, a C that varies down the rows, a run-time C or B, and weights too large to copy
    /// stay on `MatrixMultiply`; products too small to pay for a primitive fall back at run time.
    func testCasesThatMustStayOnMatrixMultiply() throws {
        let b = randomTensor([32, 16], seed: 50)
        func gemm(_ inputs: [String], _ constants: [Tensor?], transposeA: Bool = false) throws -> GemmKernel {
            let node = Node(
                name: "gemm", opType: "Gemm", inputs: inputs, outputs: ["y"],
                attributes: [("transA", .int(transposeA ? 1 : 0))])
            return try GemmKernel(KernelRequest(node: node, opset: 17, constants: constants))
        }
        XCTAssertNotNil(try gemm(["a", "b"], [nil, b]).dnnl)
        XCTAssertNil(try gemm(["a", "b"], [nil, b], transposeA: true).dnnl, "transposed A")
        XCTAssertNil(try gemm(["a", "b", "c"], [nil, b, randomTensor([4, 16], seed: 51)]).dnnl, "C per row")
        XCTAssertNil(try gemm(["a", "b", "c"], [nil, b, randomTensor([16, 1], seed: 52)]).dnnl, "C per row")
        XCTAssertNil(try gemm(["a", "b", "c"], [nil, b, nil]).dnnl, "run-time C")
        XCTAssertNil(try gemm(["a", "b"], [nil, nil]).dnnl, "run-time B")
        XCTAssertNil(try gemm(["a", "b"], [nil, randomTensor([1024, 513], seed: 53)]).dnnl, "weights over 2 MiB")

        // A C of shape [M, N] still computes right on the fallback.
        let c = randomTensor([4, 16], seed: 54), a = randomTensor([4, 32], seed: 55)
        let y = try gemm(["a", "b", "c"], [nil, b, c]).run([a, nil, nil], ExecutionContext(threads: 2))[0]
        let product = try gemm(["a", "b"], [nil, b], transposeA: false).run([a, nil], ExecutionContext(threads: 1))[0]
        let expected = zip(product.floatValues(), c.floatValues()).map { $0 + $1 }
        XCTAssertLessThanOrEqual(relativeError(y.floatValues(), expected), 1e-6)

        // One row of 32 → 16 is far below what a primitive call costs.
        let small = try XCTUnwrap(try gemm(["a", "b"], [nil, b]).dnnl)
        XCTAssertFalse(DNNLMatMul.pays(rows: 1, small))
        XCTAssertTrue(DNNLMatMul.pays(rows: 128, small))
    }

    /// Sessions share kernels: concurrent runs with different row counts build and use the cached
    /// primitives safely.
    func testConcurrentRunsWithDifferentRowCounts() throws {
        let (dnnl, plain, _) = try gemmKernels(
            GemmCase(rows: 1, inner: 200, outer: 70, transposeB: true, c: [70], activation: .relu), seed: 60)
        let rowCounts = [1, 7, 32, 33, 64, 65, 128, 5]
        let inputs = rowCounts.enumerated().map { randomTensor([$1, 200], seed: 70 + UInt64($0)) }
        let errors = Locked<[Float]>([])
        DispatchQueue.concurrentPerform(iterations: inputs.count * 2) { index in
            let a = inputs[index % inputs.count]
            do {
                let context = ExecutionContext(threads: 2)
                let expected = try plain.run([a, nil, nil], context)[0]
                let actual = try dnnl.run([a, nil, nil], context)[0]
                let error = relativeError(actual.floatValues(), expected.floatValues())
                errors.withLock { $0.append(error) }
            } catch {
                errors.withLock { $0.append(.infinity) }
            }
        }
        let all = errors.withLock { $0 }
        XCTAssertEqual(all.count, inputs.count * 2)
        XCTAssertLessThanOrEqual(all.max() ?? .infinity, 1e-5)
    }
}
