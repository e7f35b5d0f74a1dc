import LetheCore
import LetheIR
import XCTest
@testable import LetheRuntime

/// Activations kept in oneDNN's channel-blocked layout between kernels give the same values as the
/// plain NCHW plan, and never reach a kernel, tap or output that reads plain data.
final class BlockedLayoutTests: XCTestCase {
    /// A small residual CNN: conv (ReLU) → max pool → conv (ReLU) → conv → + pool output → ReLU →
    /// strided conv → max pool (padded, ceil mode) → global average pool. `channels` not a multiple
    /// of 16 exercises the zero padding of the blocks.
    private func residualModel(channels c: Int) -> Model {
        var g = GraphBuilder()
        g.input("x", [nil, 3, 18, 18])
        func conv(
            _ name: String, _ input: String, _ output: String, _ shape: [Int], _ attributes: [(String, Attribute)]
        ) {
            g.constant("\(name)_w", randomTensor(shape, seed: UInt64(g.nodes.count + 1) * 31))
            g.constant("\(name)_b", randomTensor([shape[0]], seed: UInt64(g.nodes.count + 1) * 37))
            g.node("Conv", [input, "\(name)_w", "\(name)_b"], [output], name: name, attributes)
        }
        let same: [(String, Attribute)] = [("pads", .ints([1, 1, 1, 1]))]
        conv("c1", "x", "c1", [c, 3, 3, 3], same)
        g.node("Relu", ["c1"], ["r1"])
        g.node("MaxPool", ["r1"], ["p1"], name: "pool1", [("kernel_shape", .ints([2, 2])), ("strides", .ints([2, 2]))])
        conv("c2", "p1", "c2", [c, c, 3, 3], same)
        g.node("Relu", ["c2"], ["r2"])
        conv("c3", "r2", "c3", [c, c, 3, 3], same)
        g.node("Add", ["c3", "p1"], ["s"], name: "add")
        g.node("Relu", ["s"], ["r3"])
        conv("c4", "r3", "c4", [c + 8, c, 3, 3], [("strides", .ints([2, 2])), ("pads", .ints([1, 1, 1, 1]))])
        g.node(
            "MaxPool", ["c4"], ["p2"], name: "pool2",
            [
                ("kernel_shape", .ints([3, 3])), ("strides", .ints([2, 2])), ("pads", .ints([1, 1, 0, 0])),
                ("ceil_mode", .int(1))
            ])
        g.node("GlobalAveragePool", ["p2"], ["y"])
        g.output("y")
        return g.model
    }

    private func run(_ plan: ExecutionPlan, _ x: Tensor, threads: Int) throws -> Tensor {
        try plan.execute(["x": x], taps: [:], context: ExecutionContext(threads: threads))["y"]!
    }

    func testBlockedPlanAgreesWithPlainPlan() throws {
        for channels in [16, 24, 5] {
            let model = residualModel(channels: channels)
            for (threads, channelsLast) in [(1, false), (2, false), (3, false), (1, true), (2, true)] {
                let context = ExecutionContext(threads: threads)
                let blocked = try ExecutionPlan(
                    model: model, required: [], context: context, channelsLast: channelsLast)
                let plain = try ExecutionPlan(model: model, required: [], context: context, blockedLayouts: false)
                XCTAssertTrue(plain.steps.allSatisfy { !$0.emitBlocked })
                // conv1 with pool1 (one step), conv2 and the residual Add stay blocked; conv3's
                // output too (its only reader is the Add); conv4 with pool2 feeds the plain global
                // pool.
                let kept = Set(blocked.steps.filter(\.emitBlocked).map(\.name))
                XCTAssertEqual(kept, ["c1", "c2", "c3", "add"], "channels \(channels)")
                XCTAssertEqual(blocked.steps.filter { $0.kernel is ConvPoolKernel }.map(\.name), ["c1", "c4"])
                for batch in [1, 4, 5] {
                    let x = randomTensor([batch, 3, 18, 18], seed: UInt64(batch * 10 + threads))
                    let expected = try run(plain, x, threads: threads)
                    let actual = try run(blocked, x, threads: threads)
                    XCTAssertEqual(actual.shape, [batch, channels + 8, 1, 1])
                    XCTAssertEqual(actual.shape, expected.shape)
                    XCTAssertLessThanOrEqual(
                        relativeError(actual.floatValues(), expected.floatValues()), 1e-5,
                        "channels \(channels) threads \(threads) batch \(batch) channels-last \(channelsLast)")
                    // The plain plan with the im2col fallback is the reference the oneDNN paths
                    // were checked against; here the only difference is the layout in between.
                }
            }
        }
    }

    func testTapsAndOutputsOfBlockedValuesArePlain() throws {
        var g = GraphBuilder()
        g.input("x", [nil, 8, 6, 6])
        g.constant("w1", randomTensor([24, 8, 3, 3], seed: 3))
        g.constant("w2", randomTensor([20, 24, 1, 1], seed: 4))
        g.node("Conv", ["x", "w1"], ["a"], name: "c1", [("pads", .ints([1, 1, 1, 1]))])
        g.node("Conv", ["a", "w2"], ["b"], name: "c2")
        g.node("Conv", ["a", "w2"], ["y"], name: "c3")
        g.output("y")
        g.output("b")
        let model = g.model
        let x = randomTensor([3, 8, 6, 6], seed: 5)
        let context = ExecutionContext(threads: 2)
        let blocked = try ExecutionPlan(model: model, required: [], context: context)
        XCTAssertEqual(blocked.steps.filter(\.emitBlocked).map(\.name), ["c1"], "outputs stay plain")
        let plain = try ExecutionPlan(model: model, required: [], context: context, blockedLayouts: false)
        let expected = try plain.execute(["x": x], taps: [:], context: context)
        let actual = try blocked.execute(["x": x], taps: [:], context: context)
        for name in ["y", "b"] {
            XCTAssertEqual(actual[name]!.shape, [3, 20, 6, 6])
            XCTAssertLessThanOrEqual(relativeError(actual[name]!.floatValues(), expected[name]!.floatValues()), 1e-6)
        }

        // A tapped value is required, so it stays plain; the tap sees NCHW values.
        let session = try InferenceSession(model: model, options: .init(threads: 2))
        let recorder = TapRecorder()
        let outputs = try session.run(["x": x], taps: [recorder.tap("c2", .input(0))])
        XCTAssertEqual(recorder.tensors.count, 1)
        let a = try plain.execute(["x": x], taps: [:], context: context)
        XCTAssertEqual(recorder.tensors[0].shape, [3, 24, 6, 6])
        XCTAssertLessThanOrEqual(relativeError(outputs["y"]!.floatValues(), a["y"]!.floatValues()), 1e-6)
        // The tapped value, recomputed by a plain conv from x, against what the tap saw.
        let conv = try ConvKernel(
            KernelRequest(
                node: Node(
                    name: "c1", opType: "Conv", inputs: ["x", "w1"], outputs: ["a"],
                    attributes: [(name: "pads", value: .ints([1, 1, 1, 1]))]),
                opset: 17, constants: [nil, randomTensor([24, 8, 3, 3], seed: 3)]),
            allowDNNL: false)
        let reference = try conv.run([x, nil], context)[0]
        XCTAssertLessThanOrEqual(relativeError(recorder.tensors[0].floatValues(), reference.floatValues()), 1e-5)
    }

    /// The plan picks channels-last only for large fixed-size images without grouped convolutions,
    /// and its convolutions then read and write NHWC (block 0) between them.
    func testChannelsLastIsChosenForLargeImagesAndKeptBetweenConvolutions() throws {
        func model(size: Int, group: Int) -> Model {
            var g = GraphBuilder()
            g.input("x", [nil, 8, size, size])
            g.constant("w1", randomTensor([16, 8 / group, 3, 3], seed: 71))
            g.constant("w2", randomTensor([16, 16, 1, 1], seed: 72))
            g.node("Conv", ["x", "w1"], ["a"], name: "c1", [("pads", .ints([1, 1, 1, 1])), ("group", .int(group))])
            g.node("Conv", ["a", "w2"], ["y"], name: "c2")
            g.output("y")
            return g.model
        }
        let context = ExecutionContext(threads: 2)
        for (size, group, expected) in [(112, 1, true), (64, 1, false), (112, 2, false)] {
            let plan = try ExecutionPlan(model: model(size: size, group: group), required: [], context: context)
            let conv = try XCTUnwrap(plan.steps.first?.kernel as? ConvKernel)
            let shape = try ConvolutionShape(
                x: [1, 8, 16, 16], w: [16, 8 / group, 3, 3], group: group, geometry: conv.geometry)
            let slicing = try XCTUnwrap(try conv.dnnl?.slicing(shape, rank: 2, threads: 1))
            XCTAssertEqual(slicing.destinationBlock == 0, expected, "size \(size) group \(group)")
        }
        let x = randomTensor([3, 8, 112, 112], seed: 73)
        let graph = model(size: 112, group: 1)
        let fast = try ExecutionPlan(model: graph, required: [], context: context)
        let plain = try ExecutionPlan(model: graph, required: [], context: context, blockedLayouts: false)
        let actual = try fast.execute(["x": x], taps: [:], context: context)["y"]!
        let expected = try plain.execute(["x": x], taps: [:], context: context)["y"]!
        XCTAssertLessThanOrEqual(relativeError(actual.floatValues(), expected.floatValues()), 1e-5)
    }

    func testReorderRoundTripKeepsValuesAndZeroesThePadding() throws {
        for (shape, block) in [([3, 20, 5, 7], 16), ([2, 13, 4, 4], 8), ([1, 32, 3, 3], 16), ([2, 5, 3, 4], 0)] {
            let x = randomTensor(shape, seed: 9)
            for threads in [1, 2] {
                let blocked = try BlockedReorder.toBlocked(x, block: block, threads: threads)
                let layout = try XCTUnwrap(blocked.blocked)
                XCTAssertEqual(blocked.tensor.elementCount, layout.elementCount)
                // Element (n, c, h, w) sits at ((n·C/b + c/b)·H·W + h·W + w)·b + c % b, or channels-last
                // (b = 0) at (n·H·W + h·W + w)·C + c.
                let values = blocked.tensor.floatValues(), plainValues = x.floatValues()
                let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
                let step = block == 0 ? c : block
                let blocks = layout.paddedChannels / step
                for image in 0..<n {
                    for channel in 0..<layout.paddedChannels {
                        for position in 0..<(h * w) {
                            let index =
                                ((image * blocks + channel / step) * h * w + position) * step + channel % step
                            let value = channel < c ? plainValues[(image * c + channel) * h * w + position] : 0
                            XCTAssertEqual(values[index], value)
                        }
                    }
                }
                XCTAssertEqual(try blocked.plain(threads: threads).floatValues(), plainValues)
            }
        }
    }

    /// A first layer with a large output map (64 channels of 48×48: 576 kB an image) whose pool runs
    /// image by image, against the plain plan; batches 1, 3 and 5 on 1 and 2 threads.
    func testConvolutionPooledImageByImageAgreesWithPlainPlan() throws {
        var g = GraphBuilder()
        g.input("x", [nil, 3, 48, 48])
        g.constant("w1", randomTensor([64, 3, 3, 3], seed: 21))
        g.constant("b1", randomTensor([64], seed: 22))
        g.constant("w2", randomTensor([24, 64, 1, 1], seed: 23))
        g.node("Conv", ["x", "w1", "b1"], ["c"], name: "c1", [("pads", .ints([1, 1, 1, 1]))])
        g.node("Relu", ["c"], ["r"])
        g.node(
            "MaxPool", ["r"], ["p"], name: "pool",
            [("kernel_shape", .ints([3, 3])), ("strides", .ints([2, 2])), ("pads", .ints([1, 1, 1, 1]))])
        g.node("Conv", ["p", "w2"], ["y"], name: "c2")
        g.output("y")
        try assertPooledPlanAgreesWithPlainPlan(
            g.model, batches: [1, 3, 5], input: { randomTensor([$0, 3, 48, 48], seed: UInt64(40 + $0)) },
            label: "image-by-image path",
            fusedPath: { fused, x, context in try fused.runByImage(x, emitBlocked: false, context) }
        ) { blocked, actual, batch in
            XCTAssertTrue(try XCTUnwrap(blocked.steps.first).emitBlocked)
            XCTAssertEqual(actual.shape, [batch, 24, 24, 24])
        }
    }

    /// For 1 and 2 threads and each batch: the blocked plan's first step is a fused `ConvPoolKernel`
    /// that takes `fusedPath` on the input (when `expectFused`), `check` holds, and the blocked plan
    /// agrees with the plain one to 1e-6.
    private func assertPooledPlanAgreesWithPlainPlan(
        _ model: Model, batches: [Int], input: (Int) -> Tensor, label: String, expectFused: Bool = true,
        fusedPath: (ConvPoolKernel, [LaidOutTensor?], ExecutionContext) throws -> [LaidOutTensor]?,
        check: (ExecutionPlan, Tensor, Int) throws -> Void = { _, _, _ in },
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        for threads in [1, 2] {
            let context = ExecutionContext(threads: threads)
            let blocked = try ExecutionPlan(model: model, required: [], context: context)
            let plain = try ExecutionPlan(model: model, required: [], context: context, blockedLayouts: false)
            let fused = try XCTUnwrap(blocked.steps.first?.kernel as? ConvPoolKernel, file: file, line: line)
            for batch in batches {
                let x = input(batch)
                if expectFused {
                    XCTAssertNotNil(try fusedPath(fused, [LaidOutTensor(x)], context), label, file: file, line: line)
                }
                let expected = try run(plain, x, threads: threads)
                let actual = try run(blocked, x, threads: threads)
                try check(blocked, actual, batch)
                XCTAssertEqual(actual.shape, expected.shape, file: file, line: line)
                XCTAssertLessThanOrEqual(
                    relativeError(actual.floatValues(), expected.floatValues()), 1e-6,
                    "\(label) threads \(threads) batch \(batch)", file: file, line: line)
            }
        }
    }

    /// A grey-scale first layer convolved and pooled in one kernel (`runSingleChannel`), against the
    /// plain plan: 16 and 32 channels, 3 × 3 and 5 × 5 taps, odd maps (the pool drops the last row and
    /// column), with and without bias and ReLU; batches 1 and 5 on 1 and 2 threads.
    func testSingleChannelConvolutionPooledInOneKernelAgreesWithPlainPlan() throws {
        let cases: [(channels: Int, taps: Int, pad: Int, size: Int, bias: Bool, relu: Bool)] = [
            (16, 3, 1, 28, true, true), (32, 5, 2, 13, false, true), (16, 3, 0, 11, true, false)
        ]
        for (index, shape) in cases.enumerated() {
            var g = GraphBuilder()
            g.input("x", [nil, 1, shape.size, shape.size])
            g.constant("w1", randomTensor([shape.channels, 1, shape.taps, shape.taps], seed: UInt64(60 + index)))
            if shape.bias { g.constant("b1", randomTensor([shape.channels], seed: UInt64(70 + index))) }
            g.constant("w2", randomTensor([8, shape.channels, 3, 3], seed: UInt64(80 + index)))
            g.node(
                "Conv", ["x", "w1"] + (shape.bias ? ["b1"] : []), ["c"], name: "c1",
                [("pads", .ints(Array(repeating: shape.pad, count: 4)))])
            if shape.relu { g.node("Relu", ["c"], ["r"]) }
            g.node(
                "MaxPool", [shape.relu ? "r" : "c"], ["p"], name: "pool",
                [("kernel_shape", .ints([2, 2])), ("strides", .ints([2, 2]))])
            g.node("Conv", ["p", "w2"], ["y"], name: "c2", [("pads", .ints([1, 1, 1, 1]))])
            g.output("y")
            try assertPooledPlanAgreesWithPlainPlan(
                g.model, batches: [1, 5],
                input: { randomTensor([$0, 1, shape.size, shape.size], seed: UInt64(90 + $0)) },
                label: "case \(index)", expectFused: VectorMath.hasAVX512,
                fusedPath: { fused, x, context in try fused.runSingleChannel(x, context) })
        }
    }

    /// A middle layer over 16-channel blocks convolved and pooled in one kernel (`runBlockedChannels`):
    /// run directly on the blocked input, its blocked and its plain output equal the plain plan's
    /// conv → ReLU → pool to 1e-5; and in a network (conv → conv + pool → Flatten or → conv) the
    /// blocked plan agrees with the plain one. 16 → 32, 32 → 48 (an odd number of output blocks) and
    /// 16 → 16 channels, 3 × 3 and 5 × 5 taps, odd maps, with and without bias and ReLU.
    func testBlockedChannelsConvolutionPooledInOneKernelAgreesWithPlainPlan() throws {
        let cases: [(inChannels: Int, outChannels: Int, taps: Int, pad: Int, size: Int, bias: Bool, relu: Bool)] = [
            (16, 32, 3, 1, 14, true, true), (32, 48, 5, 2, 9, false, true), (16, 16, 3, 0, 11, true, false)
        ]
        for (index, shape) in cases.enumerated() {
            let seed = UInt64(100 + 10 * index)
            // Sums of up to 800 products in another order than oneDNN's.
            let tolerance: Float = 1e-5
            let convAttributes: [(String, Attribute)] = [("pads", .ints(Array(repeating: shape.pad, count: 4)))]
            let poolAttributes: [(String, Attribute)] = [("kernel_shape", .ints([2, 2])), ("strides", .ints([2, 2]))]
            let weight = randomTensor([shape.outChannels, shape.inChannels, shape.taps, shape.taps], seed: seed)
            let bias = randomTensor([shape.outChannels], seed: seed + 1)
            // The layer alone.
            var layer = GraphBuilder()
            layer.input("x", [nil, shape.inChannels, shape.size, shape.size])
            layer.constant("w", weight)
            if shape.bias { layer.constant("b", bias) }
            layer.node("Conv", ["x", "w"] + (shape.bias ? ["b"] : []), ["c"], name: "conv", convAttributes)
            if shape.relu { layer.node("Relu", ["c"], ["r"]) }
            layer.node("MaxPool", [shape.relu ? "r" : "c"], ["y"], name: "pool", poolAttributes)
            layer.output("y")
            // In a network, read plain (Flatten) or blocked (a convolution).
            func network(blockedReader: Bool) -> Model {
                var g = GraphBuilder()
                g.input("x", [nil, 3, shape.size, shape.size])
                g.constant("w0", randomTensor([shape.inChannels, 3, 3, 3], seed: seed + 2))
                g.node("Conv", ["x", "w0"], ["c0"], name: "c0", [("pads", .ints([1, 1, 1, 1]))])
                g.constant("w", weight)
                if shape.bias { g.constant("b", bias) }
                g.node("Conv", ["c0", "w"] + (shape.bias ? ["b"] : []), ["c"], name: "conv", convAttributes)
                if shape.relu { g.node("Relu", ["c"], ["r"]) }
                g.node("MaxPool", [shape.relu ? "r" : "c"], ["p"], name: "pool", poolAttributes)
                if blockedReader {
                    g.constant("w2", randomTensor([8, shape.outChannels, 1, 1], seed: seed + 3))
                    g.node("Conv", ["p", "w2"], ["y"], name: "c2")
                } else {
                    g.node("Flatten", ["p"], ["y"])
                }
                g.output("y")
                return g.model
            }
            for threads in [1, 2] {
                let context = ExecutionContext(threads: threads)
                let plainLayer = try ExecutionPlan(
                    model: layer.model, required: [], context: context, blockedLayouts: false)
                let fusedLayer = try ExecutionPlan(model: layer.model, required: [], context: context)
                let fused = try XCTUnwrap(fusedLayer.steps.first?.kernel as? ConvPoolKernel)
                for batch in [1, 5] {
                    let x = randomTensor([batch, shape.inChannels, shape.size, shape.size], seed: seed + 4)
                    let expected = try run(plainLayer, x, threads: threads)
                    let blockedX = try BlockedReorder.toBlocked(x, block: 16, threads: threads)
                    for emitBlocked in [true, false] {
                        let label = "case \(index) threads \(threads) batch \(batch) blocked \(emitBlocked)"
                        guard VectorMath.hasAVX512 else { break }
                        let output = try XCTUnwrap(
                            try fused.runBlockedChannels([blockedX], emitBlocked: emitBlocked, context)?.first, label)
                        XCTAssertEqual(output.blocked != nil, emitBlocked, label)
                        XCTAssertEqual(output.shape, expected.shape, label)
                        let actual = try output.plain(threads: threads)
                        XCTAssertLessThanOrEqual(
                            relativeError(actual.floatValues(), expected.floatValues()), tolerance, label)
                    }
                    for blockedReader in [false, true] {
                        let model = network(blockedReader: blockedReader)
                        let blocked = try ExecutionPlan(model: model, required: [], context: context)
                        let plain = try ExecutionPlan(
                            model: model, required: [], context: context, blockedLayouts: false)
                        let input = randomTensor([batch, 3, shape.size, shape.size], seed: seed + 5)
                        let want = try run(plain, input, threads: threads),
                            got = try run(blocked, input, threads: threads)
                        XCTAssertEqual(got.shape, want.shape)
                        XCTAssertLessThanOrEqual(
                            relativeError(got.floatValues(), want.floatValues()), tolerance,
                            "case \(index) threads \(threads) batch \(batch) reader blocked \(blockedReader)")
                    }
                }
            }
        }
    }

    /// conv → max pool → Flatten → Gemm (+ ReLU): the Flatten and Gemm run as one step that reads the
    /// pooled map in its blocks (the weight permuted to their order), and the plan agrees with the
    /// plain one. Channel counts that fill the blocks and that leave padding, the weight stored
    /// transposed (a Linear layer) and not, blocks and channels-last, batches 1 and 5.
    func testFlattenIntoGemmReadsBlockedMapsAndAgreesWithPlainPlan() throws {
        for (channels, transposed) in [(32, true), (24, true), (16, false)] {
            let features = channels * 5 * 5
            var g = GraphBuilder()
            g.input("x", [nil, 3, 10, 10])
            g.constant("w", randomTensor([channels, 3, 3, 3], seed: 131))
            g.constant("fc", randomTensor(transposed ? [12, features] : [features, 12], seed: 132))
            g.constant("bias", randomTensor([12], seed: 133))
            g.node("Conv", ["x", "w"], ["c"], name: "conv", [("pads", .ints([1, 1, 1, 1]))])
            g.node("Relu", ["c"], ["r"])
            g.node("MaxPool", ["r"], ["p"], name: "pool", [("kernel_shape", .ints([2, 2])), ("strides", .ints([2, 2]))])
            g.node("Flatten", ["p"], ["f"], name: "flatten")
            g.node("Gemm", ["f", "fc", "bias"], ["g"], name: "fc", [("transB", .int(transposed ? 1 : 0))])
            g.node("Relu", ["g"], ["y"])
            g.output("y")
            for (threads, channelsLast) in [(1, false), (2, false), (1, true)] {
                let context = ExecutionContext(threads: threads)
                let blocked = try ExecutionPlan(
                    model: g.model, required: [], context: context, channelsLast: channelsLast)
                let plain = try ExecutionPlan(model: g.model, required: [], context: context, blockedLayouts: false)
                let label = "channels \(channels) transposed \(transposed) threads \(threads) last \(channelsLast)"
                XCTAssertEqual(blocked.steps.map(\.name), ["conv", "fc"], label)
                XCTAssertTrue(blocked.steps[1].kernel is FlattenGemmKernel, label)
                XCTAssertTrue(blocked.steps[0].emitBlocked, label)
                for batch in [1, 5] {
                    let x = randomTensor([batch, 3, 10, 10], seed: UInt64(140 + batch))
                    let expected = try run(plain, x, threads: threads), actual = try run(blocked, x, threads: threads)
                    XCTAssertEqual(actual.shape, [batch, 12], label)
                    XCTAssertLessThanOrEqual(
                        relativeError(actual.floatValues(), expected.floatValues()), 1e-5, "\(label) batch \(batch)")
                }
            }
            // Tapped, the flattened value stays its own step and plain.
            let tapped = try ExecutionPlan(model: g.model, required: ["f"], context: ExecutionContext(threads: 1))
            XCTAssertFalse(tapped.steps.contains { $0.kernel is FlattenGemmKernel })
        }
    }

    /// 1-D and 3-D chains (conv → ReLU → max pool → conv → + → conv) keep their blocked layouts
    /// (nCw16c, nCdhw16c) and agree with the plain plan.
    func testOneAndThreeDimensionalChainsAgreeWithPlainPlan() throws {
        for spatial in [[20], [6, 7, 8]] {
            let rank = spatial.count
            var g = GraphBuilder()
            g.input("x", [nil, 4] + spatial.map { $0 as Int? })
            let kernel = [Int](repeating: 3, count: rank), pads = [Int](repeating: 1, count: 2 * rank)
            g.constant("w1", randomTensor([20, 4] + kernel, seed: 51))
            g.constant("w2", randomTensor([20, 20] + kernel, seed: 52))
            g.constant("w3", randomTensor([12, 20] + kernel, seed: 53))
            g.node("Conv", ["x", "w1"], ["a"], name: "c1", [("pads", .ints(pads))])
            g.node("Relu", ["a"], ["r"])
            g.node(
                "MaxPool", ["r"], ["p"], name: "pool",
                [
                    ("kernel_shape", .ints([Int](repeating: 2, count: rank))),
                    ("strides", .ints([Int](repeating: 2, count: rank)))
                ])
            g.node("Conv", ["p", "w2"], ["b"], name: "c2", [("pads", .ints(pads))])
            g.node("Add", ["b", "p"], ["s"], name: "add")
            g.node("Conv", ["s", "w3"], ["y"], name: "c3", [("pads", .ints(pads))])
            g.output("y")
            let model = g.model
            for (threads, channelsLast) in [(1, false), (2, false), (2, true)] {
                let context = ExecutionContext(threads: threads)
                let blocked = try ExecutionPlan(
                    model: model, required: [], context: context, channelsLast: channelsLast)
                let plain = try ExecutionPlan(model: model, required: [], context: context, blockedLayouts: false)
                XCTAssertEqual(
                    Set(blocked.steps.filter(\.emitBlocked).map(\.name)), ["c1", "c2", "add"], "\(spatial)")
                for batch in [1, 3] {
                    let x = randomTensor([batch, 4] + spatial, seed: UInt64(60 + batch))
                    let expected = try run(plain, x, threads: threads)
                    let actual = try run(blocked, x, threads: threads)
                    XCTAssertEqual(actual.shape, [batch, 12] + spatial.map { $0 / 2 })
                    XCTAssertLessThanOrEqual(
                        relativeError(actual.floatValues(), expected.floatValues()), 1e-6,
                        "\(spatial) threads \(threads) batch \(batch)")
                }
            }
        }
    }

    func testBlockedMaxPoolAgreesWithPlainPool() throws {
        let cases: [[(String, Attribute)]] = [
            [("kernel_shape", .ints([2, 2])), ("strides", .ints([2, 2]))],
            [("kernel_shape", .ints([3, 3])), ("strides", .ints([2, 2])), ("pads", .ints([1, 1, 1, 1]))],
            [("kernel_shape", .ints([3, 2])), ("strides", .ints([2, 3])), ("ceil_mode", .int(1))],
            [("kernel_shape", .ints([3, 3])), ("auto_pad", .string(Array("SAME_UPPER".utf8)))]
        ]
        for (index, attributes) in cases.enumerated() {
            let node = Node(
                name: "pool", opType: "MaxPool", inputs: ["x"], outputs: ["y"],
                attributes: attributes.map { (name: $0.0, value: $0.1) })
            let kernel = try BlockedMaxPoolKernel(KernelRequest(node: node, opset: 17, constants: [nil]))
            XCTAssertNotNil(kernel.dnnl)
            let x = randomTensor([5, 20, 11, 9], seed: UInt64(index))
            for threads in [1, 2] {
                let context = ExecutionContext(threads: threads)
                let expected = try kernel.plain.run([x], context)[0]
                let blocked = try BlockedReorder.toBlocked(x, block: 16, threads: threads)
                for emit in [false, true] {
                    let result = try kernel.run(laidOut: [blocked], emitBlocked: emit, context)[0]
                    XCTAssertEqual(result.blocked != nil, emit, "case \(index)")
                    let actual = try result.plain(threads: threads)
                    XCTAssertEqual(actual.shape, expected.shape, "case \(index)")
                    XCTAssertEqual(actual.floatValues(), expected.floatValues(), "case \(index) threads \(threads)")
                }
            }
        }
    }
}
