import LetheCore
import LetheIR
import XCTest
@testable import LetheRuntime

/// BatchNormalization with training_mode=1 (batch statistics, updated running mean and variance)
/// against ONNX Runtime.
final class BatchNormTrainingTests: XCTestCase {
    func testTrainingModeMatchesOnnxRuntime() throws {
        let cases = try onnxRuntimeCases(
            """
            import onnx.numpy_helper as nh

            def batchnorm(name, shape, opset=15, outputs=('y', 'running_mean', 'running_var'), **attributes):
                # ONNX requires all three outputs in training mode (ONNX Runtime 1.32 crashes on omitted ones);
                # `outputs` chooses which become graph outputs.
                c = shape[1]
                inputs = {'x': randn(*shape) * 3 + 1.5, 'scale': randn(c), 'bias': randn(c), 'mean': randn(c),
                          'var': rng.random(c).astype(np.float32) + 0.5}
                node = helper.make_node('BatchNormalization', ['x', 'scale', 'bias', 'mean', 'var'], ['y', 'running_mean', 'running_var'],
                                        training_mode=1, **attributes)
                case(name, [node], inputs, list(outputs), opset)

            batchnorm('nchw_defaults', (4, 3, 5, 6))
            batchnorm('nchw_momentum_epsilon', (4, 3, 5, 6), momentum=0.7, epsilon=1e-2)
            batchnorm('ncl_opset14', (3, 5, 7), opset=14)
            batchnorm('nc', (8, 4))
            batchnorm('ncdhw', (2, 3, 3, 4, 5), momentum=0.5)
            batchnorm('y_only', (4, 3, 5, 6), outputs=('y',))
            batchnorm('running_var_only', (4, 3, 5, 6), outputs=('running_var',))
            # A Conv feeding a training BatchNormalization must not be folded with it (folding uses the given statistics).
            w = nh.from_array(randn(4, 3, 3, 3), 'w')
            s, b, m = (nh.from_array(randn(4), n) for n in ['s', 'b', 'm'])
            v = nh.from_array(rng.random(4).astype(np.float32) + 0.5, 'v')
            nodes = [helper.make_node('Conv', ['x', 'w'], ['c'], pads=[1, 1, 1, 1]),
                     helper.make_node('BatchNormalization', ['c', 's', 'b', 'm', 'v'], ['y', 'rm', 'rv'], training_mode=1)]
            case('conv_then_training_batchnorm', nodes, {'x': randn(2, 3, 6, 6)}, ['y', 'rm', 'rv'], 15, [w, s, b, m, v])
            """)
        XCTAssertEqual(cases.count, 8)
        var worst: Float = 0
        for reference in cases {
            worst = max(worst, try assertMatchesOnnxRuntime(reference, tolerance: 1e-5))
        }
        print("BatchNormTrainingTests: \(cases.count) cases, worst relative difference from ONNX Runtime \(worst)")
    }

    func testInferenceModeStillUsesTheGivenStatistics() throws {
        let cases = try onnxRuntimeCases(
            """
            c = 3
            node = helper.make_node('BatchNormalization', ['x', 'scale', 'bias', 'mean', 'var'], ['y'], training_mode=0)
            inputs = {'x': randn(2, c, 4, 4), 'scale': randn(c), 'bias': randn(c), 'mean': randn(c),
                      'var': rng.random(c).astype(np.float32) + 0.5}
            case('inference', [node], inputs, ['y'], 15)
            """)
        XCTAssertEqual(cases.count, 1)
        try assertMatchesOnnxRuntime(cases[0], tolerance: 1e-6)
    }
}
