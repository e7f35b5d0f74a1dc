import LetheCore
import LetheIR
import XCTest
@testable import LetheRuntime

/// 3-D MaxPool/AveragePool (NCDHW) and MaxPool's Indices output against ONNX Runtime, with the 1-D and
/// 2-D pools that now share their loop.
final class Pool3DTests: XCTestCase {
    func testPoolsMatchOnnxRuntime() throws {
        let cases = try onnxRuntimeCases(
            """
            def pool(name, op, shape, opset=19, indices=False, **attributes):
                outputs = ['y', ('i', TensorProto.INT64)] if indices else ['y']
                node = helper.make_node(op, ['x'], [o if isinstance(o, str) else o[0] for o in outputs], **attributes)
                case(name, [node], {'x': randn(*shape)}, outputs, opset)

            video = (2, 3, 6, 7, 8)
            for op in ['MaxPool', 'AveragePool']:
                short = 'max' if op == 'MaxPool' else 'avg'
                pool(f'{short}3d_default', op, video, kernel_shape=[2, 2, 2])
                pool(f'{short}3d_strided_padded', op, video, kernel_shape=[3, 3, 3], strides=[2, 2, 2], pads=[1, 0, 1, 1, 1, 0])
                pool(f'{short}3d_dilated_ceil', op, video, kernel_shape=[2, 3, 2], strides=[2, 1, 3], dilations=[2, 1, 2], ceil_mode=1)
                pool(f'{short}3d_same_upper', op, video, kernel_shape=[3, 2, 3], strides=[2, 2, 2], auto_pad='SAME_UPPER')
                pool(f'{short}3d_same_lower', op, video, kernel_shape=[2, 3, 3], strides=[1, 2, 2], auto_pad='SAME_LOWER')
                pool(f'{short}3d_valid', op, video, kernel_shape=[3, 3, 3], strides=[1, 2, 3], auto_pad='VALID')
                pool(f'{short}2d_padded', op, (2, 3, 9, 10), kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
                pool(f'{short}1d_ceil', op, (2, 3, 11), kernel_shape=[3], strides=[2], ceil_mode=1)
            for include in [0, 1]:
                pool(f'avg3d_count_include_pad{include}', 'AveragePool', video, kernel_shape=[3, 3, 3], strides=[2, 2, 2],
                     pads=[1, 1, 1, 1, 1, 1], count_include_pad=include)
                pool(f'avg3d_count_include_pad{include}_ceil', 'AveragePool', video, kernel_shape=[2, 3, 3], strides=[2, 2, 3],
                     pads=[0, 1, 1, 1, 0, 1], count_include_pad=include, ceil_mode=1)
            # Medical volumes are often one channel and anisotropic.
            pool('max3d_one_channel_anisotropic', 'MaxPool', (1, 1, 4, 12, 12), kernel_shape=[1, 3, 3], strides=[1, 2, 2], pads=[0, 1, 1, 0, 1, 1])
            # Indices: flat positions in the whole input, row-major (storage_order=0) or column-major spatial part (1).
            for order in [0, 1]:
                pool(f'max3d_indices_order{order}', 'MaxPool', video, indices=True, kernel_shape=[2, 3, 2], strides=[2, 2, 2],
                     pads=[0, 1, 1, 1, 1, 0], storage_order=order)
                pool(f'max2d_indices_order{order}', 'MaxPool', (2, 3, 9, 10), indices=True, kernel_shape=[3, 3], strides=[2, 2],
                     pads=[1, 1, 1, 1], storage_order=order)
                pool(f'max2d_2x2_indices_order{order}', 'MaxPool', (2, 3, 8, 8), indices=True, kernel_shape=[2, 2], strides=[2, 2],
                     storage_order=order)
            pool('max1d_indices', 'MaxPool', (2, 3, 11), indices=True, kernel_shape=[3], strides=[2], pads=[1, 1])
            pool('max3d_indices_dilated_opset12', 'MaxPool', video, opset=12, indices=True, kernel_shape=[2, 2, 2], dilations=[2, 2, 2])
            # Integer MaxPool (int8/uint8 are allowed since opset 12).
            for dtype, kind in [(np.uint8, TensorProto.UINT8), (np.int8, TensorProto.INT8)]:
                x = rng.integers(np.iinfo(dtype).min, np.iinfo(dtype).max + 1, size=(2, 3, 4, 7, 6)).astype(dtype)
                node = helper.make_node('MaxPool', ['x'], ['y', 'i'], kernel_shape=[2, 3, 3], strides=[1, 2, 2], pads=[0, 1, 1, 1, 1, 1])
                case(f'max3d_{np.dtype(dtype).name}', [node], {'x': x}, [('y', kind), ('i', TensorProto.INT64)], 19)
            """)
        XCTAssertEqual(cases.count, 31)
        var worst: Float = 0
        for reference in cases {
            worst = max(worst, try assertMatchesOnnxRuntime(reference, tolerance: 1e-6))
        }
        print("Pool3DTests: \(cases.count) cases, worst relative difference from ONNX Runtime \(worst)")
    }

    func testFourDimensionalWindowIsUnsupported() {
        var builder = GraphBuilder()
        builder.input("x", [1, 1, 2, 2, 2, 2])
        builder.node("MaxPool", ["x"], ["y"], [("kernel_shape", .ints([2, 2, 2, 2]))])
        builder.output("y")
        XCTAssertThrowsError(try InferenceSession(model: builder.model)) { error in
            XCTAssertTrue(error is UnsupportedOperatorError, "\(error)")
        }
    }

    func testWindowLargerThanInputIsARuntimeError() throws {
        var builder = GraphBuilder()
        builder.input("x", [1, 1, 2, 4, 4])
        builder.node("AveragePool", ["x"], ["y"], [("kernel_shape", .ints([3, 2, 2]))])
        builder.output("y")
        let session = try InferenceSession(model: builder.model)
        XCTAssertThrowsError(try session.run(["x": randomTensor([1, 1, 2, 4, 4], seed: 3)])) { error in
            XCTAssertTrue(error is RuntimeError, "\(error)")
        }
    }
}
