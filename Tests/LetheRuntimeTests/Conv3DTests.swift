import LetheCore
import LetheIR
import XCTest
@testable import LetheRuntime

/// 3-D convolution (NCDHW; video and medical models) against ONNX Runtime: strides, dilations, pads,
/// auto_pad, groups, depthwise and pointwise filters, (2+1)-D factorised kernels, constant and runtime
/// weights, a fused ReLU and a folded BatchNormalization.
final class Conv3DTests: XCTestCase {
    func testConv3DMatchesOnnxRuntime() throws {
        let cases = try onnxRuntimeCases(
            """
            import onnx.numpy_helper as nh

            def conv(name, x, w, bias=True, constant=True, then=None, **attributes):
                inputs = {'x': x}
                names = ['x', 'w'] + (['b'] if bias else [])
                values = {'w': w, 'b': randn(w.shape[0])}
                initializers = []
                for n in names[1:]:
                    if constant:
                        initializers.append(nh.from_array(values[n], n))
                    else:
                        inputs[n] = values[n]
                nodes = [helper.make_node('Conv', names, ['c' if then else 'y'], **attributes)]
                if then == 'relu':
                    nodes.append(helper.make_node('Relu', ['c'], ['y']))
                elif then == 'batchnorm':
                    m = w.shape[0]
                    for n, v in [('s', randn(m)), ('bb', randn(m)), ('mean', randn(m)), ('var', rng.random(m).astype(np.float32) + 0.5)]:
                        initializers.append(nh.from_array(v, n))
                    nodes.append(helper.make_node('BatchNormalization', ['c', 's', 'bb', 'mean', 'var'], ['y']))
                case(name, nodes, inputs, ['y'], 18, initializers)

            clip = randn(2, 3, 5, 8, 9)
            conv('k3_pad1', clip, randn(4, 3, 3, 3, 3), pads=[1, 1, 1, 1, 1, 1])
            conv('k3_no_bias_runtime_weights', clip, randn(4, 3, 3, 3, 3), bias=False, constant=False)
            conv('strided_dilated_asymmetric_pads', clip, randn(6, 3, 2, 3, 3), strides=[2, 1, 2], dilations=[1, 2, 2],
                 pads=[1, 0, 2, 0, 1, 1])
            conv('same_upper', clip, randn(4, 3, 3, 2, 3), strides=[2, 2, 2], auto_pad='SAME_UPPER')
            conv('same_lower', clip, randn(4, 3, 2, 3, 3), strides=[1, 2, 2], auto_pad='SAME_LOWER')
            conv('groups', randn(2, 4, 4, 6, 6), randn(6, 2, 3, 3, 3), group=2, pads=[1, 1, 1, 1, 1, 1])
            conv('depthwise_strided', randn(2, 6, 5, 8, 8), randn(6, 1, 3, 3, 3), group=6, strides=[1, 2, 2], pads=[1, 1, 1, 1, 1, 1])
            conv('depthwise_dilated_runtime', randn(1, 4, 6, 7, 7), randn(4, 1, 2, 3, 3), group=4, dilations=[2, 1, 2], constant=False)
            conv('pointwise', clip, randn(5, 3, 1, 1, 1))
            conv('spatial_then_temporal_1', clip, randn(8, 3, 1, 3, 3), pads=[0, 1, 1, 0, 1, 1], then='relu')
            conv('spatial_then_temporal_2', randn(2, 8, 5, 8, 9), randn(4, 8, 3, 1, 1), pads=[1, 0, 0, 1, 0, 0])
            conv('folded_batchnorm', clip, randn(4, 3, 3, 3, 3), pads=[1, 1, 1, 1, 1, 1], then='batchnorm')
            # One image with a large plane (several GEMM chunks, no batching of images).
            conv('large_plane', randn(1, 8, 8, 16, 16), randn(16, 8, 3, 3, 3), pads=[1, 1, 1, 1, 1, 1], strides=[1, 1, 1])
            """)
        XCTAssertEqual(cases.count, 13)
        var worst: Float = 0
        for reference in cases {
            worst = max(worst, try assertMatchesOnnxRuntime(reference, tolerance: 1e-5))
        }
        print("Conv3DTests: \(cases.count) cases, worst relative difference from ONNX Runtime \(worst)")
    }

    func testMismatchedWeightIsARuntimeError() throws {
        var builder = GraphBuilder()
        builder.input("x", [1, 2, 4, 4, 4])
        builder.input("w", [3, 3, 2, 2, 2])
        builder.node("Conv", ["x", "w"], ["y"])
        builder.output("y")
        let session = try InferenceSession(model: builder.model)
        XCTAssertThrowsError(
            try session.run(["x": randomTensor([1, 2, 4, 4, 4], seed: 1), "w": randomTensor([3, 3, 2, 2, 2], seed: 2)])
        ) { error in
            XCTAssertTrue(error is RuntimeError, "\(error)")
        }
    }
}

/// 3-D ConvTranspose (3-D U-Net decoders) against ONNX Runtime, with the 2-D and 1-D cases that now share its loop.
final class ConvTranspose3DTests: XCTestCase {
    func testConvTransposeMatchesOnnxRuntime() throws {
        let cases = try onnxRuntimeCases(
            """
            import onnx.numpy_helper as nh

            def deconv(name, x, w, bias=True, constant=True, **attributes):
                inputs = {'x': x}
                names = ['x', 'w'] + (['b'] if bias else [])
                values = {'w': w, 'b': randn(w.shape[1] * attributes.get('group', 1))}
                initializers = []
                for n in names[1:]:
                    if constant:
                        initializers.append(nh.from_array(values[n], n))
                    else:
                        inputs[n] = values[n]
                case(name, [helper.make_node('ConvTranspose', names, ['y'], **attributes)], inputs, ['y'], 18, initializers)

            volume = randn(2, 4, 3, 5, 6)
            deconv('k2_s2_upsample', volume, randn(4, 3, 2, 2, 2), strides=[2, 2, 2])
            deconv('k3_s2_pads_output_padding', volume, randn(4, 3, 3, 3, 3), strides=[2, 2, 2], pads=[1, 1, 1, 1, 1, 1],
                   output_padding=[1, 0, 1])
            deconv('dilated_asymmetric', volume, randn(4, 2, 2, 3, 2), strides=[1, 2, 3], dilations=[2, 1, 2],
                   pads=[0, 1, 0, 1, 0, 1], bias=False, constant=False)
            deconv('groups', volume, randn(4, 2, 3, 3, 3), group=2, strides=[2, 1, 2])
            deconv('output_shape_same_upper', volume, randn(4, 3, 3, 3, 3), strides=[2, 2, 2], auto_pad='SAME_UPPER')
            deconv('output_shape_attribute', volume, randn(4, 3, 3, 3, 3), strides=[2, 2, 2], output_shape=[6, 10, 12])
            deconv('2d_still', randn(2, 4, 5, 6), randn(4, 3, 3, 3), strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1])
            deconv('1d_still', randn(2, 4, 7), randn(4, 3, 4), strides=[3], pads=[1, 2])
            """)
        XCTAssertEqual(cases.count, 8)
        var worst: Float = 0
        for reference in cases {
            worst = max(worst, try assertMatchesOnnxRuntime(reference, tolerance: 1e-5))
        }
        print("ConvTranspose3DTests: \(cases.count) cases, worst relative difference from ONNX Runtime \(worst)")
    }
}
