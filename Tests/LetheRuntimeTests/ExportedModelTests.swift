import LetheCore
import LetheFormats
import LetheIR
import LetheNumPy
import LetheONNX
import LetheTestSupport
import XCTest
@testable import LetheRuntime
#if canImport(Glibc)
import Glibc
#endif

/// Real PyTorch exports (both exporters) against ONNX Runtime's outputs.
final class ExportedModelTests: XCTestCase {
    static let modelsFolder = packageRoot + "/formats/models"

    private func arrays(_ path: String) throws -> [String: Tensor] {
        Dictionary(uniqueKeysWithValues: try NPZFormat.readArrays(path: path).map { ($0.name, $0.tensor) })
    }

    func testEveryExportMatchesOnnxRuntime() throws {
        let names = ["resnet_ts", "resnet_dynamo", "vgg_ts", "vgg_dynamo", "vit_ts", "vit_dynamo"]
        for name in names {
            let path = "\(Self.modelsFolder)/\(name).onnx"
            let model = try ONNXFormat.read(path: path).model
            let inputs = try arrays("\(Self.modelsFolder)/\(name).inputs.npz")
            let expected = try arrays("\(Self.modelsFolder)/\(name).expected.npz")
            for threads in [1, 2] {
                let session = try InferenceSession(model: model, options: .init(threads: threads))
                XCTAssertEqual(session.inputNames, ["input"], name)
                let outputs = try session.run(inputs)
                for (output, reference) in expected {
                    guard let actual = outputs[output] else { XCTFail("\(name): no output \(output)"); continue }
                    XCTAssertEqual(actual.shape, reference.shape, name)
                    let error = relativeError(actual.floatValues(), reference.floatValues())
                    XCTAssertLessThanOrEqual(error, 1e-4, "\(name) threads \(threads)")
                }
            }
        }
    }

    /// Taps on the weight layers' inputs (what the statistics passes tap) leave the outputs the same
    /// bits. Tapping inside attention as well (the scores' MatMuls) keeps the attention unfused, whose
    /// BLAS products round differently from the fused kernel's: the outputs then agree to 1e-5.
    func testTapsOnEveryWeightLayerLeaveOutputsUnchanged() throws {
        for name in ["resnet_ts", "resnet_dynamo", "vit_ts", "vit_dynamo"] {
            let model = try ONNXFormat.read(path: "\(Self.modelsFolder)/\(name).onnx").model
            let inputs = try arrays("\(Self.modelsFolder)/\(name).inputs.npz")
            let session = try InferenceSession(model: model, options: .init(threads: 2))
            let plain = try session.run(inputs)["logits"]!
            let products = model.graph.nodes.enumerated().filter {
                ["Conv", "Gemm", "MatMul"].contains($0.element.opType)
            }
            let layers = products.filter { model.graph.initializer(named: $0.element.inputs[1]) != nil }
            let recorder = TapRecorder()
            let taps = layers.map { index, _ in
                ActivationTap(nodeIndex: index, port: .input(0)) { [recorder] t in _ = recorder.record(index, t) }
            }
            let tapped = try session.run(inputs, taps: taps)["logits"]!
            XCTAssertTrue(tapped.isBitwiseEqual(to: plain), name)
            XCTAssertEqual(recorder.count, layers.count, name)
            let everyProduct = products.map { index, _ in ActivationTap(nodeIndex: index, port: .input(0)) { _ in } }
            let unfused = try session.run(inputs, taps: everyProduct)["logits"]!
            XCTAssertLessThanOrEqual(relativeError(unfused.floatValues(), plain.floatValues()), 1e-5, name)
            // The first layer's input is the model input itself.
            XCTAssertTrue(recorder.tensor(for: layers[0].offset)?.isBitwiseEqual(to: inputs["input"]!) ?? false, name)
            // Every Gemm/MatMul tap has the weight's input size as its last axis.
            for (index, node) in layers where node.opType != "Conv" {
                guard let seen = recorder.tensor(for: index) else {
                    XCTFail("\(name): no tap for node \(index)"); continue
                }
                if let weight = model.graph.initializer(named: node.inputs[1]) {
                    let inner =
                        node.opType == "Gemm" && node.attribute("transB")?.intValue == 1
                        ? weight.shape[1] : weight.shape[0]
                    XCTAssertEqual(seen.shape.last, inner, "\(name) node \(index)")
                }
            }
        }
    }

    func testSampleCNNMatchesOnnxRuntimeRunNow() throws {
        let python = try referencePython()
        let folder = FileManagerless.temporaryFolder()
        let script = """
            import sys, numpy as np, onnxruntime as ort
            data = np.load(sys.argv[1])
            x = data['x'][:100]
            x = (x.astype(np.float32) / 255.0) if x.dtype == np.uint8 else x.astype(np.float32)
            x = x.reshape(-1, 1, 28, 28)
            out = {'input': x}
            for name in ['fashion_cnn.onnx', 'fashion_cnn_dynamo.onnx']:
                options = ort.SessionOptions(); options.intra_op_num_threads = 1
                s = ort.InferenceSession(sys.argv[2] + '/' + name, options, providers=['CPUExecutionProvider'])
                out[name] = s.run(None, {s.get_inputs()[0].name: x})[0]
            np.savez(sys.argv[3], **out)
            """
        let scriptPath = folder + "/reference.py", outPath = folder + "/reference.npz"
        try writeText(script, to: scriptPath)
        try runProcess(
            python, [scriptPath, packageRoot + "/samples/fashion_test.npz", packageRoot + "/samples", outPath])
        let reference = try arrays(outPath)
        let input = try XCTUnwrap(reference["input"])
        for name in ["fashion_cnn.onnx", "fashion_cnn_dynamo.onnx"] {
            let model = try ONNXFormat.read(path: packageRoot + "/samples/" + name).model
            let session = try InferenceSession(model: model)
            let outputs = try session.run([session.inputNames[0]: input])
            let actual = try XCTUnwrap(outputs[session.outputNames[0]])
            let expected = try XCTUnwrap(reference[name])
            XCTAssertEqual(actual.shape, [100, 10])
            XCTAssertLessThanOrEqual(relativeError(actual.floatValues(), expected.floatValues()), 1e-4, name)
        }
    }
}

/// The Python interpreter with the reference libraries, per the project's test convention.
func referencePython() throws -> String { try TestEnvironment.requirePython() }

enum ProcessEnvironment {
    static func value(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
}

enum FileManagerless {
    static func temporaryFolder() -> String {
        var template = Array("/tmp/lethe-runtime-XXXXXX".utf8CString)
        return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
    }
}

func writeText(_ text: String, to path: String) throws {
    guard let file = fopen(path, "w") else { throw RuntimeError("cannot write \(path)") }
    defer { fclose(file) }
    fputs(text, file)
}

/// Runs `executable` with `arguments`, failing on a non-zero exit.
func runProcess(_ executable: String, _ arguments: [String]) throws {
    let argv = ([executable] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    guard posix_spawn(&pid, executable, nil, nil, argv, environ) == 0 else {
        throw RuntimeError("cannot start \(executable)")
    }
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    guard status == 0 else { throw RuntimeError("\(executable) \(arguments.first ?? "") exited with status \(status)") }
}
