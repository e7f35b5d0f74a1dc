import LetheCore
import LetheIR
import LetheONNX
import XCTest
@testable import LetheRuntime
#if canImport(Glibc)
import Glibc
#endif

/// Runs the ONNX backend node tests (fetched by `formats/onnx-backend/fetch.sh`) whose operators the
/// runtime supports, and fails on any failure not listed in `formats/onnx-backend/EXPECTED_FAILURES.md`.
final class ONNXBackendConformanceTests: XCTestCase {
    static let dataFolder = packageRoot + "/.build/onnx-backend-node"
    static let expectedFailuresFile = packageRoot + "/formats/onnx-backend/EXPECTED_FAILURES.md"

    enum Outcome {
        case passed
        case failed(String)
        case skipped(String)
        case outOfScope
    }

    func testBackendNodeConformance() throws {
        guard let cases = listFolder(Self.dataFolder)?.filter({ $0.hasPrefix("test_") }).sorted(), !cases.isEmpty else {
            if ProcessEnvironment.value("CI") != nil { XCTFail("run formats/onnx-backend/fetch.sh first"); return }
            throw XCTSkip("ONNX backend node tests not fetched; run formats/onnx-backend/fetch.sh")
        }
        let expected = try expectedFailures()
        var passed = 0, failed: [(String, String)] = [], skipped: [(String, String)] = [], outOfScope = 0
        for name in cases {
            switch run(name) {
            case .passed: passed += 1
            case .failed(let why): failed.append((name, why))
            case .skipped(let why): skipped.append((name, why))
            case .outOfScope: outOfScope += 1
            }
        }
        print(
            "ONNX backend node tests: \(passed) passed, \(failed.count) failed, \(skipped.count) skipped (\(outOfScope) use operators outside the runtime's set)"
        )
        for (name, why) in failed + skipped where expected[name] == nil {
            print("  unexpected: \(name): \(why)")
        }
        let unexpected = failed.filter { expected[$0.0] == nil }
        XCTAssertTrue(
            unexpected.isEmpty, "unexpected failures: \(unexpected.map { "\($0.0): \($0.1)" }.joined(separator: "\n"))")
        let nowPassing = expected.keys.filter { name in
            !failed.contains { $0.0 == name } && !skipped.contains { $0.0 == name }
        }
        if !nowPassing.isEmpty {
            print("  listed in EXPECTED_FAILURES.md but passing now: \(nowPassing.sorted().joined(separator: ", "))")
        }
        XCTAssertGreaterThan(passed, 300)
    }

    /// Case name → reason, from lines "- `test_name`: reason".
    private func expectedFailures() throws -> [String: String] {
        guard let text = readText(Self.expectedFailuresFile) else { return [:] }
        var result: [String: String] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("- `") {
            let body = line.dropFirst(3)
            guard let end = body.firstIndex(of: "`") else { continue }
            result[String(body[..<end])] = String(body[body.index(after: end)...])
        }
        return result
    }

    static let floatOnlyKinds: Set<DType> = [.float64, .float16, .bfloat16]

    private func run(_ name: String) -> Outcome {
        let folder = "\(Self.dataFolder)/\(name)"
        let model: Model
        do {
            model = try ONNXFormat.read(path: folder + "/model.onnx").model
        } catch {
            return .skipped("model does not load: \(error)")
        }
        guard model.graph.nodes.allSatisfy({ OperatorRegistry.factory(for: $0) != nil }) else { return .outOfScope }
        let sets = (listFolder(folder) ?? []).filter { $0.hasPrefix("test_data_set_") }.sorted()
        guard !sets.isEmpty else { return .skipped("no test data") }
        let session: InferenceSession
        do {
            session = try InferenceSession(model: model, options: .init(threads: 2))
        } catch let error as UnsupportedOperatorError {
            return .skipped("unsupported: \(error)")
        } catch {
            return .failed("session: \(error)")
        }
        let isCast = name.hasPrefix("test_cast")
        for set in sets {
            let files = (listFolder("\(folder)/\(set)") ?? []).sorted { numbered($0) < numbered($1) }
            var inputs: [String: Tensor] = [:], outputs: [Tensor] = []
            do {
                var positional = 0
                for file in files where file.hasPrefix("input_") {
                    let decoded = try readTensorFile("\(folder)/\(set)/\(file)")
                    let inputName =
                        session.inputNames.contains(decoded.name)
                        ? decoded.name
                        : (positional < session.inputNames.count ? session.inputNames[positional] : decoded.name)
                    inputs[inputName] = decoded.tensor
                    positional += 1
                }
                for file in files where file.hasPrefix("output_") {
                    outputs.append(try readTensorFile("\(folder)/\(set)/\(file)").tensor)
                }
            } catch {
                return .skipped("test data not decodable: \(error)")
            }
            let kinds = Set(inputs.values.map(\.dtype) + outputs.map(\.dtype))
            if !isCast && !kinds.isDisjoint(with: Self.floatOnlyKinds) {
                return .skipped(
                    "compute type is float32; case uses \(kinds.intersection(Self.floatOnlyKinds).map(\.rawValue).sorted())"
                )
            }
            let results: [String: Tensor]
            do {
                results = try session.run(inputs)
            } catch {
                return .failed("run: \(error)")
            }
            for (index, reference) in outputs.enumerated() {
                guard index < session.outputNames.count, let actual = results[session.outputNames[index]] else {
                    return .failed("output \(index) missing")
                }
                if let problem = compare(actual, reference) { return .failed("output \(index): \(problem)") }
            }
        }
        return .passed
    }

    /// nil when `actual` matches `reference` (floats within rtol 1e-3 + atol 1e-5, others exactly).
    private func compare(_ actual: Tensor, _ reference: Tensor) -> String? {
        guard actual.shape == reference.shape else { return "shape \(actual.shape), expected \(reference.shape)" }
        guard actual.dtype == reference.dtype else { return "dtype \(actual.dtype), expected \(reference.dtype)" }
        if reference.dtype.isFloatingPoint {
            let a = actual.doubleValues(), b = reference.doubleValues()
            for i in a.indices {
                if a[i].isNaN && b[i].isNaN { continue }
                if a[i] == b[i] { continue }
                if abs(a[i] - b[i]) > 1e-5 + 1e-3 * abs(b[i]) || a[i].isNaN != b[i].isNaN {
                    return "element \(i) is \(a[i]), expected \(b[i])"
                }
            }
            return nil
        }
        return actual.isBitwiseEqual(to: reference) ? nil : "values differ"
    }

    /// A test data file: one serialized TensorProto, decoded as LetheONNX decodes tensors.
    private func readTensorFile(_ path: String) throws -> (name: String, tensor: Tensor) {
        try (readBytes(path) ?? []).withUnsafeBytes { try ONNXFormat.readTensor(bytes: $0) }
    }

    private func numbered(_ file: String) -> Int {
        Int(file.filter(\.isNumber)) ?? 0
    }
}

/// Entries of a folder, or nil when it cannot be read.
func listFolder(_ path: String) -> [String]? {
    guard let directory = opendir(path) else { return nil }
    defer { closedir(directory) }
    var names: [String] = []
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name != "." && name != ".." { names.append(name) }
    }
    return names
}

func readBytes(_ path: String) -> [UInt8]? {
    guard let file = fopen(path, "rb") else { return nil }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&buffer, 1, buffer.count, file)
        if n <= 0 { break }
        bytes += buffer[0..<n]
    }
    return bytes
}

func readText(_ path: String) -> String? { readBytes(path).map { String(decoding: $0, as: UTF8.self) } }
