import Dispatch
import LetheCore
import LetheIR
import XCTest
@testable import LetheRuntime

/// The oneDNN convolution path against the im2col path it falls back to, on random convolutions.
final class DNNLConvolutionTests: XCTestCase {
    private struct Case {
        var x: [Int]
        var w: [Int]
        var strides: [Int]? = nil
        var pads: [Int]? = nil
        var dilations: [Int]? = nil
        var group = 1
        var bias = true
        var activation: Activation? = nil
        /// Whether oneDNN must take this case (it may refuse odd ones; then both paths are im2col).
        var expectDNNL = true
    }

    private func kernels(_ c: Case, seed: UInt64) throws -> (dnnl: ConvKernel, im2col: ConvKernel, inputs: [Tensor?]) {
        let x = randomTensor(c.x, seed: seed), w = randomTensor(c.w, seed: seed + 1)
        let b = c.bias ? randomTensor([c.w[0]], seed: seed + 2) : nil
        var attributes: [(name: String, value: Attribute)] = [("group", .int(c.group))]
        if let strides = c.strides { attributes.append(("strides", .ints(strides))) }
        if let pads = c.pads { attributes.append(("pads", .ints(pads))) }
        if let dilations = c.dilations { attributes.append(("dilations", .ints(dilations))) }
        let node = Node(
            name: "conv", opType: "Conv", inputs: c.bias ? ["x", "w", "b"] : ["x", "w"], outputs: ["y"],
            attributes: attributes)
        let request = KernelRequest(
            node: node, opset: 17, constants: [nil, w] + (c.bias ? [b] : []),
            activation: c.activation)
        return (try ConvKernel(request), try ConvKernel(request, allowDNNL: false), [x, w] + (c.bias ? [b] : []))
    }

    private func check(
        _ c: Case, threads: [Int] = [1, 2], seed: UInt64, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let (dnnl, im2col, inputs) = try kernels(c, seed: seed)
        XCTAssertNil(im2col.dnnl, file: file, line: line)
        for threads in threads {
            let context = ExecutionContext(threads: threads)
            let expected = try im2col.run(inputs, context)[0]
            let actual = try dnnl.run(inputs, context)[0]
            XCTAssertEqual(actual.shape, expected.shape, file: file, line: line)
            XCTAssertLessThanOrEqual(
                relativeError(actual.floatValues(), expected.floatValues()), 1e-5,
                "\(c) threads \(threads)", file: file, line: line)
            if c.expectDNNL {
                let conv = try ConvolutionShape(x: c.x, w: c.w, group: c.group, geometry: dnnl.geometry)
                let implementation = try XCTUnwrap(dnnl.dnnl).implementation(
                    conv, rank: c.x.count - 2, threads: threads)
                XCTAssertNotNil(implementation, "oneDNN refused \(c)", file: file, line: line)
            }
        }
    }

    func testPlainConvolutionsAgreeWithIm2col() throws {
        try check(Case(x: [1, 3, 9, 9], w: [8, 3, 3, 3], pads: [1, 1, 1, 1], activation: .relu), seed: 1)
        try check(Case(x: [64, 1, 28, 28], w: [16, 1, 5, 5], pads: [2, 2, 2, 2], activation: .relu), seed: 2)
        try check(Case(x: [64, 16, 14, 14], w: [32, 16, 3, 3], pads: [1, 1, 1, 1]), seed: 3)
        try check(Case(x: [5, 64, 8, 8], w: [32, 64, 1, 1], bias: false), seed: 4)
        try check(Case(x: [2, 17, 13, 11], w: [19, 17, 3, 2], strides: [2, 1], pads: [1, 0, 2, 1]), seed: 5)
    }

    /// 3 × 3 stride-1 convolutions with 64 channels or more on maps of 4 × 4 or more go to oneDNN's
    /// Winograd kernel where it has one (AVX-512), and agree with im2col like the direct kernels; a
    /// smaller map, fewer channels or a stride keep the direct kernels.
    func testWinogradConvolutionsAgreeWithIm2col() throws {
        let winograd: [Case] = [
            Case(x: [6, 64, 8, 8], w: [64, 64, 3, 3], pads: [1, 1, 1, 1], activation: .relu),
            Case(x: [3, 128, 4, 4], w: [128, 128, 3, 3], pads: [1, 1, 1, 1]),
            Case(x: [2, 64, 13, 9], w: [96, 64, 3, 3], pads: [1, 1, 1, 1], bias: false),
            Case(x: [2, 64, 10, 10], w: [64, 64, 3, 3])
        ]
        let direct: [Case] = [
            Case(x: [4, 256, 2, 2], w: [256, 256, 3, 3], pads: [1, 1, 1, 1]),
            Case(x: [4, 32, 8, 8], w: [32, 32, 3, 3], pads: [1, 1, 1, 1]),
            Case(x: [4, 64, 8, 8], w: [64, 64, 3, 3], strides: [2, 2], pads: [1, 1, 1, 1])
        ]
        var taken = 0
        for (index, c) in (winograd + direct).enumerated() {
            try check(c, seed: 70 + UInt64(index) * 3)
            let dnnl = try XCTUnwrap(try kernels(c, seed: 1).dnnl.dnnl)
            let conv = try ConvolutionShape(x: c.x, w: c.w, group: 1, geometry: try kernels(c, seed: 1).dnnl.geometry)
            let implementation = try XCTUnwrap(try dnnl.implementation(conv, rank: 2, threads: 2))
            if index < winograd.count {
                if implementation.contains("wino") { taken += 1 }
            } else {
                XCTAssertFalse(implementation.contains("wino"), "\(c): \(implementation)")
            }
        }
        // Without AVX-512 oneDNN has no Winograd kernel and every case runs direct.
        try XCTSkipIf(taken == 0, "oneDNN offers no Winograd kernel on this CPU")
        XCTAssertEqual(taken, winograd.count)
    }

    /// Large images keep channels-last activations, unless a convolution may take the Winograd
    /// kernel, which reads and writes only 16-channel blocks.
    func testWinogradConvolutionsKeepChannelBlocks() throws {
        func graph(kernel: Int, channels: Int) -> WorkingGraph {
            var g = GraphBuilder()
            g.input("x", [nil, channels, 112, 112])
            g.constant("w", randomTensor([channels, channels, kernel, kernel], seed: 90))
            g.node("Conv", ["x", "w"], ["y"], name: "conv", [("pads", .ints([Int](repeating: kernel / 2, count: 4)))])
            g.output("y")
            return WorkingGraph(model: g.model, required: [])
        }
        XCTAssertFalse(ExecutionPlan.prefersChannelsLast(graph(kernel: 3, channels: 64)))
        XCTAssertTrue(ExecutionPlan.prefersChannelsLast(graph(kernel: 3, channels: 32)))
        XCTAssertTrue(ExecutionPlan.prefersChannelsLast(graph(kernel: 1, channels: 64)))
    }

    /// Taps that read only padding are left out when one is left (a 3 × 3 convolution over a 1 × 1
    /// map is its centre tap); the result is the whole kernel's.
    func testKernelsCutToTheirOneLiveTapAgreeWithIm2col() throws {
        try check(Case(x: [64, 48, 1, 1], w: [32, 48, 3, 3], pads: [1, 1, 1, 1], activation: .relu), seed: 30)
        try check(Case(x: [3, 16, 1, 1], w: [8, 8, 5, 5], pads: [2, 2, 2, 2], group: 2), seed: 31)
        try check(Case(x: [5, 16, 1, 7], w: [8, 16, 3, 3], pads: [1, 1, 1, 1]), seed: 32)
        try check(Case(x: [4, 16, 2, 2], w: [8, 16, 3, 3], strides: [2, 2], pads: [1, 1, 1, 1]), seed: 33)
        func axis(
            _ input: Int, kernel: Int, stride: Int = 1, dilation: Int = 1, pad: Int, output: Int
        )
            -> ConvolutionShape.Axis
        {
            .init(input: input, kernel: kernel, stride: stride, dilation: dilation, padBegin: pad, output: output)
        }
        // 1 × 1 map, pad 1: the centre tap, pad 0.
        let centre = try XCTUnwrap(
            KernelCrop([axis(1, kernel: 3, pad: 1, output: 1), axis(1, kernel: 3, pad: 1, output: 1)]))
        XCTAssertEqual(centre.taps, [1..<2, 1..<2])
        XCTAssertEqual(centre.cropped([axis(1, kernel: 3, pad: 1, output: 1)]).map(\.padBegin), [0])
        // A 1 × 7 map keeps every tap along its width: no single tap there, so no crop.
        XCTAssertNil(KernelCrop([axis(1, kernel: 3, pad: 1, output: 1), axis(7, kernel: 3, pad: 1, output: 7)]))
        // 2 × 2 map, stride 2: two live taps an axis, left whole.
        XCTAssertNil(KernelCrop([axis(2, kernel: 3, stride: 2, pad: 1, output: 1)]))
        // Dilation 2 over a 1-wide map, pad 2: tap 1 of 0..<3.
        XCTAssertEqual(KernelCrop([axis(1, kernel: 3, dilation: 2, pad: 2, output: 1)])?.taps, [1..<2])
        // Cutting keeps the weights of the live tap, per output and input channel.
        let weight = Tensor(shape: [2, 1, 3, 3], values: (0..<18).map(Float.init))
        XCTAssertEqual(centre.cut(weight).floatValues(), [4, 13])
        XCTAssertEqual(centre.cut(weight).shape, [2, 1, 1, 1])
    }

    /// Maps one column wide with one-column kernels (a 1-D convolution written as 2-D, magika's) go to
    /// oneDNN as one row wide; the bytes are the same, so are the results.
    func testOneColumnMapsAgreeWithIm2col() throws {
        try check(Case(x: [64, 32, 40, 1], w: [48, 32, 5, 1], activation: .relu), seed: 40)
        try check(Case(x: [3, 16, 21, 1], w: [8, 16, 3, 1], strides: [2, 1], pads: [1, 0, 2, 0]), seed: 41)
        try check(Case(x: [2, 12, 17, 1], w: [12, 4, 3, 1], dilations: [2, 1], group: 3), seed: 42)
        // A one-row map with a one-row kernel is already in oneDNN's favoured orientation.
        try check(Case(x: [4, 16, 1, 30], w: [8, 16, 1, 5]), seed: 43)
    }

    func testGroupedAndDepthwiseConvolutionsAgreeWithIm2col() throws {
        try check(
            Case(
                x: [1, 32, 16, 16], w: [32, 1, 3, 3], strides: [2, 2], pads: [1, 1, 1, 1], group: 32,
                activation: .hardSwish), seed: 10)
        try check(
            Case(x: [64, 24, 12, 12], w: [24, 1, 5, 5], pads: [2, 2, 2, 2], group: 24, activation: .relu), seed: 11)
        try check(Case(x: [3, 8, 10, 10], w: [16, 1, 3, 3], pads: [1, 1, 1, 1], group: 8), seed: 12)
        try check(
            Case(
                x: [3, 12, 11, 11], w: [24, 4, 3, 3], pads: [0, 1, 2, 1], group: 3,
                activation: .clip(min: 0, max: 6)), seed: 13)
    }

    func testStridesDilationsAndAsymmetricPadsAgreeWithIm2col() throws {
        try check(
            Case(
                x: [2, 8, 12, 12], w: [8, 8, 3, 3], pads: [2, 2, 2, 2], dilations: [2, 2],
                activation: .leakyRelu(alpha: 0.1)), seed: 20)
        // The stride skips the last input column: oneDNN needs a smaller end pad than ONNX's.
        try check(Case(x: [2, 4, 10, 10], w: [6, 4, 3, 3], strides: [2, 2], pads: [0, 0, 1, 1]), seed: 21)
        try check(
            Case(x: [1, 5, 15, 9], w: [7, 5, 3, 3], strides: [3, 2], pads: [2, 0, 0, 2], dilations: [1, 3]), seed: 22)
        try check(Case(x: [4, 6, 9, 9], w: [6, 6, 2, 2], strides: [2, 2]), seed: 23)
    }

    func testFusedAndUnfusedActivationsAgreeWithIm2col() throws {
        let activations: [Activation] = [
            .relu, .leakyRelu(alpha: 0.2), .clip(min: -0.5, max: 0.5), .hardSwish,
            .hardSigmoid(alpha: 0.2, beta: 0.5), .sigmoid, .tanh, .gelu(tanhApproximation: false),
            .elu(alpha: 1), .softplus
        ]
        for (index, activation) in activations.enumerated() {
            try check(
                Case(x: [3, 8, 7, 7], w: [16, 8, 3, 3], pads: [1, 1, 1, 1], activation: activation),
                seed: 30 + UInt64(index))
        }
    }

    func testOneAndThreeDimensionalConvolutionsAgreeWithIm2col() throws {
        try check(Case(x: [4, 6, 20], w: [8, 6, 3], pads: [1, 2], activation: .relu), seed: 40)
        try check(Case(x: [2, 4, 5, 6, 7], w: [6, 4, 3, 3, 3], pads: [1, 1, 1, 1, 1, 1]), seed: 41)
        try check(Case(x: [2, 4, 6, 6, 6], w: [4, 1, 3, 3, 3], strides: [2, 2, 2], group: 4), seed: 42)
    }

    func testBatchesSplitAcrossThreadsAgreeWithIm2col() throws {
        // 64 and 5 images on 2 and 3 threads: equal and unequal slices; 1 image runs as one slice.
        for (index, batch) in [1, 5, 64].enumerated() {
            try check(
                Case(x: [batch, 16, 10, 10], w: [32, 16, 3, 3], pads: [1, 1, 1, 1], activation: .relu),
                threads: [1, 2, 3], seed: 50 + UInt64(index))
        }
    }

    func testConcurrentRunsShareOneKernel() throws {
        let (dnnl, im2col, inputs) = try kernels(
            Case(
                x: [6, 8, 12, 12], w: [16, 8, 3, 3], pads: [1, 1, 1, 1],
                activation: .relu), seed: 60)
        let x = inputs[0]!
        // Different batch sizes and thread counts at once: every run builds or finds its own primitives.
        let batches = [1, 2, 3, 6, 4, 5, 6, 1]
        let expected = try batches.map { batch in
            try im2col.run([x.rows(0..<batch)] + inputs.dropFirst(), ExecutionContext(threads: 1))[0].floatValues()
        }
        let results = Locked<[Int: [Float]]>([:])
        DispatchQueue.concurrentPerform(iterations: batches.count) { index in
            let batch = batches[index]
            let y = try? dnnl.run([x.rows(0..<batch)] + inputs.dropFirst(), ExecutionContext(threads: 1 + index % 2))[0]
            results.withLock { $0[index] = y?.floatValues() }
        }
        let actual = results.withLock { $0 }
        for index in batches.indices {
            let values = try XCTUnwrap(actual[index], "run \(index) failed")
            XCTAssertLessThanOrEqual(relativeError(values, expected[index]), 1e-5)
        }
    }
}

extension Tensor {
    /// The first images of a batch, copied.
    fileprivate func rows(_ range: Range<Int>) -> Tensor {
        let per = elementCount / shape[0]
        let values = floatValues()
        return Tensor(
            shape: [range.count] + shape.dropFirst(),
            values: Array(values[(range.lowerBound * per)..<(range.upperBound * per)]))
    }
}
