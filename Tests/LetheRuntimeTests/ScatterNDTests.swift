import LetheCore
import LetheIR
import XCTest
@testable import LetheRuntime

/// ScatterND against ONNX Runtime: every index depth, negative indices, each reduction (with
/// duplicate indices, where the order of application matters), integer data, and bad indices.
final class ScatterNDTests: XCTestCase {
    func testMatchesOnnxRuntime() throws {
        let cases = try onnxRuntimeCases(
            """
            def scatter(name, data, indices, updates, opset, reduction=None, constant_indices=False):
                attributes = {} if reduction is None else {'reduction': reduction}
                node = helper.make_node('ScatterND', ['data', 'indices', 'updates'], ['y'], **attributes)
                inputs = {'data': data, 'updates': updates}
                initializers = []
                if constant_indices:
                    initializers.append(onnx.numpy_helper.from_array(indices, 'indices'))
                else:
                    inputs['indices'] = indices
                out = [('y', helper.np_dtype_to_tensor_dtype(data.dtype))]
                case(name, [node], inputs, out, opset, initializers)

            import onnx.numpy_helper
            # Depth 1: whole [5, 6] slices of a [4, 5, 6] tensor, indices batched [2, 1].
            scatter('depth1_opset11', randn(4, 5, 6), np.array([[[3]], [[0]]], dtype=np.int64), randn(2, 1, 5, 6), 11)
            # Depth 2: rows; one index negative (counts from the end).
            scatter('depth2_negative_opset13', randn(4, 5, 6), np.array([[0, 1], [3, -1], [2, 2]], dtype=np.int64), randn(3, 6), 13)
            # Depth 3: single elements, indices a constant initializer.
            idx = np.stack(np.unravel_index(rng.permutation(120)[:17], (4, 5, 6)), axis=-1).astype(np.int64)
            scatter('depth3_elements_constant', randn(4, 5, 6), idx, randn(17), 13, constant_indices=True)
            # Rank-1 data, as the dynamo exporter emits for slice assignment.
            scatter('rank1', randn(9), np.array([[8], [1], [4]], dtype=np.int64), randn(3), 18)
            # Reductions with duplicate indices: every update must be combined.
            dup = np.array([[1, 2], [1, 2], [0, 4], [1, 2], [3, 0]], dtype=np.int64)
            scatter('add_opset16', randn(4, 5, 6), dup, randn(5, 6), 16, 'add')
            scatter('mul_opset16', randn(4, 5, 6), dup, randn(5, 6), 16, 'mul')
            for r in ['none', 'add', 'mul', 'max', 'min']:
                scatter(f'{r}_opset18', randn(4, 5, 6), dup if r != 'none' else dup[[0, 2, 4]], randn(5 if r != 'none' else 3, 6), 18, r)
            # Integer data.
            ints = rng.integers(-50, 50, size=(6, 4)).astype(np.int64)
            scatter('int64_add', ints, np.array([[2], [5], [2]], dtype=np.int64), rng.integers(-9, 9, size=(3, 4)).astype(np.int64), 18, 'add')
            scatter('int32_max', ints.astype(np.int32), np.array([[2], [5], [2]], dtype=np.int64), rng.integers(-90, 90, size=(3, 4)).astype(np.int32), 18, 'max')
            # Swin's shifted-window mask: zeros with rectangular regions numbered (data [1, 8, 8, 1]).
            mask = np.zeros((1, 8, 8, 1), dtype=np.float32)
            region = np.stack(np.meshgrid(np.arange(6, 8), np.arange(0, 8), indexing='ij'), axis=-1).reshape(-1, 2)
            region = np.concatenate([np.zeros((len(region), 1), dtype=np.int64), region], axis=1).astype(np.int64)
            scatter('swin_mask_region', mask, region, np.full((len(region), 1), 3.0, dtype=np.float32), 13)
            """)
        XCTAssertEqual(cases.count, 14)
        for reference in cases {
            let error = try assertMatchesOnnxRuntime(reference, tolerance: 0)
            print("ScatterND \(reference.name): max relative difference from ONNX Runtime \(error)")
        }
    }

    private func scatterModel(
        dataShape: [Int], indices: Tensor, updatesShape: [Int], reduction: String? = nil, opset: Int = 18
    ) -> Model {
        var builder = GraphBuilder()
        builder.opset = opset
        builder.input("data", dataShape)
        builder.input("updates", updatesShape)
        builder.constant("indices", indices)
        builder.node(
            "ScatterND", ["data", "indices", "updates"], ["y"],
            reduction.map { [("reduction", .string(Array($0.utf8)))] } ?? [])
        builder.output("y")
        return builder.model
    }

    func testOutOfRangeIndexIsARuntimeError() throws {
        for bad in [3, -4] {
            let model = scatterModel(dataShape: [3, 2], indices: .int64([bad], shape: [1, 1]), updatesShape: [1, 2])
            let session = try InferenceSession(model: model)
            XCTAssertThrowsError(
                try session.run(["data": randomTensor([3, 2], seed: 1), "updates": randomTensor([1, 2], seed: 2)])
            ) { error in
                XCTAssertTrue(error is RuntimeError, "\(error)")
                XCTAssertTrue("\(error)".contains("out of range"), "\(error)")
            }
        }
    }

    func testMismatchedUpdatesAndTooDeepIndicesAreRuntimeErrors() throws {
        // Updates must be indices.shape[:-1] + data.shape[k:] = [2, 2].
        let wrongUpdates = scatterModel(dataShape: [3, 2], indices: .int64([0, 1], shape: [2, 1]), updatesShape: [2, 3])
        XCTAssertThrowsError(
            try InferenceSession(model: wrongUpdates)
                .run(["data": randomTensor([3, 2], seed: 1), "updates": randomTensor([2, 3], seed: 2)])
        ) { error in
            XCTAssertTrue(error is RuntimeError, "\(error)")
        }
        // Indices addressing 3 axes of 2-D data.
        let tooDeep = scatterModel(dataShape: [3, 2], indices: .int64([0, 1, 0], shape: [1, 3]), updatesShape: [1])
        XCTAssertThrowsError(
            try InferenceSession(model: tooDeep)
                .run(["data": randomTensor([3, 2], seed: 1), "updates": randomTensor([1], seed: 2)])
        ) { error in
            XCTAssertTrue(error is RuntimeError, "\(error)")
        }
    }

    func testReductionNeedsItsOpset() {
        let model = scatterModel(
            dataShape: [3, 2], indices: .int64([0], shape: [1, 1]), updatesShape: [1, 2], reduction: "max", opset: 16)
        XCTAssertThrowsError(try InferenceSession(model: model)) { error in
            XCTAssertTrue(error is UnsupportedOperatorError, "\(error)")
        }
    }
}
