import LetheCore
import LetheIR
import XCTest
@testable import LetheRuntime

/// GatherND against ONNX Runtime: index depths, batch_dims, negative indices, integer data, bad indices.
final class GatherNDTests: XCTestCase {
    func testMatchesOnnxRuntime() throws {
        let cases = try onnxRuntimeCases(
            """
            def gather(name, data, indices, opset=13, **attributes):
                node = helper.make_node('GatherND', ['data', 'indices'], ['y'], **attributes)
                case(name, [node], {'data': data, 'indices': indices}, [('y', helper.np_dtype_to_tensor_dtype(data.dtype))], opset)

            gather('depth1_opset11', randn(4, 5, 6), np.array([[3], [0], [3]], dtype=np.int64), opset=11)
            gather('depth2_negative', randn(4, 5, 6), np.array([[[0, -1], [3, 2]], [[-4, 0], [1, 1]]], dtype=np.int64))
            gather('depth3_elements', randn(4, 5, 6), np.array([[3, 4, 5], [0, 0, 0], [1, -2, 3]], dtype=np.int64))
            gather('batch_dims1', randn(3, 5, 6), np.array([[[4], [0]], [[1], [1]], [[2], [-1]]], dtype=np.int64), opset=12, batch_dims=1)
            gather('batch_dims2_elements', randn(2, 3, 4, 5), np.array([[[1, 4], [3, 0], [0, 2]], [[2, 2], [1, 1], [3, 4]]], dtype=np.int64), batch_dims=2)
            gather('batch_dims1_one_index_per_batch', randn(3, 5, 6), np.array([[4, 1], [0, 0], [2, 5]], dtype=np.int64), batch_dims=1)
            gather('int64_data', rng.integers(-100, 100, size=(5, 4)).astype(np.int64), np.array([[4, 3], [0, 0]], dtype=np.int64))
            # Swin V2's relative position table lookup: [table, heads] rows picked by [W*W, W*W, 1] indices.
            table = randn(49, 3)
            gather('swin_v2_table', table, rng.integers(0, 49, size=(16, 16, 1)).astype(np.int64))
            """)
        XCTAssertEqual(cases.count, 8)
        for reference in cases {
            try assertMatchesOnnxRuntime(reference, tolerance: 0)
        }
    }

    func testBadIndicesAreRuntimeErrors() throws {
        for (indices, batchDims) in [
            (Tensor.int64([0, 5], shape: [1, 2]), 0), (.int64([-4], shape: [1, 1]), 0),
            (.int64([0, 0, 0], shape: [1, 3]), 0), (.int64([0, 1], shape: [2, 1]), 1)
        ] {
            var builder = GraphBuilder()
            builder.input("data", [3, 2])
            builder.constant("indices", indices)
            builder.node("GatherND", ["data", "indices"], ["y"], [("batch_dims", .int(batchDims))])
            builder.output("y")
            let session = try InferenceSession(model: builder.model)
            XCTAssertThrowsError(try session.run(["data": randomTensor([3, 2], seed: 1)]), "\(indices.shape)") {
                error in
                XCTAssertTrue(error is RuntimeError, "\(error)")
            }
        }
    }
}
