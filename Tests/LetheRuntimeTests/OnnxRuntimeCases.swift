import LetheCore
import LetheIR
import LetheNumPy
import LetheONNX
import XCTest
@testable import LetheRuntime

/// One model built by onnx.helper at test time, its inputs, and what ONNX Runtime computed for them.
struct OnnxRuntimeCase {
    let name: String
    let model: Model
    let inputs: [String: Tensor]
    let expected: [String: Tensor]
}

/// Builds single-operator reference cases in Python: `body` calls `case(name, nodes, inputs, outputs, opset)`
/// (defined in the prelude below) once per case; each is checked by onnx, run by ONNX Runtime (CPU,
/// one thread) and saved, so the Swift side compares against a second, independent implementation.
func onnxRuntimeCases(_ body: String) throws -> [OnnxRuntimeCase] {
    let python = try referencePython()
    let folder = FileManagerless.temporaryFolder()
    let prelude = """
        import sys, numpy as np, onnx, onnxruntime as ort
        from onnx import helper, TensorProto
        OUT = sys.argv[1]
        rng = np.random.default_rng(2026)
        names = []

        def case(name, nodes, inputs, outputs, opset, initializers=()):
            # inputs: name -> array; outputs: names (float32) or (name, TensorProto type) pairs.
            outs = [o if isinstance(o, tuple) else (o, TensorProto.FLOAT) for o in outputs]
            graph = helper.make_graph(
                nodes, name,
                [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape) for k, v in inputs.items()],
                [helper.make_empty_tensor_value_info(n) for n, _ in outs],
                initializer=list(initializers))
            model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', opset)], ir_version=10)
            # The outputs' types and shapes come from ONNX shape inference (strict: a malformed case fails here).
            inferred = {v.name: v for v in onnx.shape_inference.infer_shapes(model, strict_mode=True).graph.value_info}
            for i, (n, t) in enumerate(outs):
                model.graph.output[i].CopyFrom(inferred.get(n, helper.make_tensor_value_info(n, t, None)))
            onnx.checker.check_model(model, full_check=True)
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            session = ort.InferenceSession(model.SerializeToString(), options, providers=['CPUExecutionProvider'])
            results = session.run([n for n, _ in outs], inputs)
            onnx.save(model, f'{OUT}/{name}.onnx')
            np.savez(f'{OUT}/{name}.inputs.npz', **inputs)
            np.savez(f'{OUT}/{name}.expected.npz', **{n: r for (n, _), r in zip(outs, results)})
            names.append(name)

        def randn(*shape):
            return rng.standard_normal(shape).astype(np.float32)

        """
    let epilogue = """

        with open(f'{OUT}/cases.txt', 'w') as f:
            f.write(chr(10).join(names))
        """
    try writeText(prelude + body + epilogue, to: folder + "/cases.py")
    try runProcess(python, [folder + "/cases.py", folder])
    let names = (readText(folder + "/cases.txt") ?? "").split(separator: "\n").map(String.init)
    return try names.map { name in
        OnnxRuntimeCase(
            name: name,
            model: try ONNXFormat.read(path: "\(folder)/\(name).onnx").model,
            inputs: try npzArrays("\(folder)/\(name).inputs.npz"),
            expected: try npzArrays("\(folder)/\(name).expected.npz"))
    }
}

func npzArrays(_ path: String) throws -> [String: Tensor] {
    Dictionary(uniqueKeysWithValues: try NPZFormat.readArrays(path: path).map { ($0.name, $0.tensor) })
}

/// Runs `reference` with the runtime at 1 and 2 threads and checks every output: float outputs within
/// `tolerance` relative (max |Δ| / max |reference|), others exactly. Returns the worst relative error.
@discardableResult
func assertMatchesOnnxRuntime(
    _ reference: OnnxRuntimeCase, tolerance: Float = 1e-5,
    file: StaticString = #filePath, line: UInt = #line
) throws -> Float {
    var worst: Float = 0
    for threads in [1, 2] {
        let session = try InferenceSession(model: reference.model, options: .init(threads: threads))
        let outputs = try session.run(reference.inputs)
        for (name, expected) in reference.expected {
            guard let actual = outputs[name] else {
                XCTFail("\(reference.name): no output \(name)", file: file, line: line)
                continue
            }
            XCTAssertEqual(actual.shape, expected.shape, "\(reference.name).\(name)", file: file, line: line)
            XCTAssertEqual(actual.dtype, expected.dtype, "\(reference.name).\(name)", file: file, line: line)
            guard actual.shape == expected.shape, actual.dtype == expected.dtype else { continue }
            if expected.dtype == .float32 {
                let error = relativeError(actual.floatValues(), expected.floatValues())
                worst = max(worst, error)
                XCTAssertLessThanOrEqual(
                    error, tolerance, "\(reference.name).\(name) threads \(threads)", file: file, line: line)
            } else {
                XCTAssertTrue(
                    actual.isBitwiseEqual(to: expected), "\(reference.name).\(name) differs", file: file, line: line)
            }
        }
    }
    return worst
}
