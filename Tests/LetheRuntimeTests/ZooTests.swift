import LetheCore
import LetheIR
import LetheONNX
import XCTest
@testable import LetheRuntime

/// torchvision image and video classifiers (reduced widths, random weights; `formats/models/zoo/make_zoo.py`)
/// exported by both PyTorch exporters, run by the runtime and by ONNX Runtime on the same seeded input.
///
/// `LETHE_ZOO=/some/folder` runs every `.onnx` there instead (e.g. full-size exports made locally).
final class ZooTests: XCTestCase {
    static let zooFolder = packageRoot + "/formats/models/zoo"

    func testZooMatchesOnnxRuntime() throws {
        let custom = ProcessEnvironment.value("LETHE_ZOO")
        let folder = custom ?? Self.zooFolder
        let names = (listFolder(folder) ?? []).filter { $0.hasSuffix(".onnx") }.map { String($0.dropLast(5)) }.sorted()
        if custom == nil {
            // The committed zoo covers every model with both exporters; a regeneration must not drop one.
            let expected = ["convnext", "mobilenet", "s3d", "shufflenet", "swin", "swin3d"].flatMap {
                ["\($0)_dynamo", "\($0)_ts"]
            }
            XCTAssertEqual(names, expected.sorted())
        }
        XCTAssertFalse(names.isEmpty, "no .onnx files in \(folder)")
        let python = try referencePython()
        let work = FileManagerless.temporaryFolder()
        let script = """
            import sys, numpy as np, onnxruntime as ort
            folder, out = sys.argv[1], sys.argv[2]
            for name in sys.argv[3:]:
                options = ort.SessionOptions()
                options.intra_op_num_threads = 1
                session = ort.InferenceSession(f'{folder}/{name}.onnx', options, providers=['CPUExecutionProvider'])
                rng = np.random.default_rng(7)
                feeds = {}
                for i in session.get_inputs():
                    shape = [d if isinstance(d, int) else 2 for d in i.shape]
                    feeds[i.name] = rng.standard_normal(shape).astype(np.float32)
                results = session.run(None, feeds)
                np.savez(f'{out}/{name}.inputs.npz', **feeds)
                np.savez(f'{out}/{name}.expected.npz', **{o.name: r for o, r in zip(session.get_outputs(), results)})
            """
        try writeText(script, to: work + "/reference.py")
        try runProcess(python, [work + "/reference.py", folder, work] + names)
        for name in names {
            let model = try ONNXFormat.read(path: "\(folder)/\(name).onnx").model
            if custom == nil && name.hasPrefix("swin") {
                // The point of the Swin exports: the shifted-window mask is built with ScatterND.
                XCTAssertTrue(model.graph.nodes.contains { $0.opType == "ScatterND" }, name)
            }
            let reference = OnnxRuntimeCase(
                name: name, model: model, inputs: try npzArrays("\(work)/\(name).inputs.npz"),
                expected: try npzArrays("\(work)/\(name).expected.npz"))
            // Random weights can make logits degenerate (a zero head, activations that die out); then
            // agreement proves nothing. The two inputs of the batch must give clearly different logits.
            for (output, tensor) in reference.expected
            where tensor.dtype == .float32 && tensor.rank == 2 && tensor.shape[0] == 2 {
                let values = tensor.floatValues(), row = tensor.shape[1]
                let spread = relativeError(Array(values[..<row]), Array(values[row...]))
                XCTAssertGreaterThan(spread, 1e-3, "\(name).\(output): the batch's logits barely differ")
            }
            let error = try assertMatchesOnnxRuntime(reference, tolerance: 1e-4)
            print("zoo \(name): max relative difference from ONNX Runtime \(error)")
        }
    }
}
