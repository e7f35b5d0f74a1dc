import Foundation
import XCTest

final class InspectConvertDiffTests: XCTestCase {
    func testInspectJSONDescribesTheSampleModel() throws {
        let result = try CLI.run(["inspect", CLI.sample("fashion_cnn.onnx"), "--json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(json["format"] as? String, "onnx")
        let ops = (json["ops"] as! [[String: Any]]).map { $0["op"] as! String }
        XCTAssertTrue(ops.contains("Conv"), "\(ops)")
        let inputs = json["inputs"] as! [[String: Any]]
        XCTAssertEqual(inputs.count, 1)
        XCTAssertEqual((inputs[0]["shape"] as! [String]).suffix(3), ["1", "28", "28"])
        XCTAssertGreaterThan(json["parameters"] as! Int, 100_000)
        let text = try CLI.run(["inspect", CLI.sample("fashion_cnn.safetensors")])
        XCTAssertEqual(text.status, 0, text.stderr)
        XCTAssertTrue(text.stdout.contains("safetensors"))
    }

    func testConvertRoundTripsAndDiffSeesNoChange() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let onnx = CLI.sample("fashion_cnn.onnx")
        // ONNX → safetensors → npz → safetensors → ONNX (through the template) keeps every value.
        XCTAssertEqual(try CLI.run(["convert", onnx, "\(folder)/a.safetensors"]).status, 0)
        XCTAssertEqual(try CLI.run(["convert", "\(folder)/a.safetensors", "\(folder)/b.npz"]).status, 0)
        XCTAssertEqual(try CLI.run(["convert", "\(folder)/b.npz", "\(folder)/c.safetensors"]).status, 0)
        let back = try CLI.run(["convert", "\(folder)/c.safetensors", "\(folder)/d.onnx", "--graph", onnx])
        XCTAssertEqual(back.status, 0, back.stderr)
        let same = try CLI.run(["diff", onnx, "\(folder)/d.onnx"])
        XCTAssertEqual(same.status, 0, same.stdout + same.stderr)
        XCTAssertEqual(
            try Data(contentsOf: URL(fileURLWithPath: "\(folder)/d.onnx")),
            try Data(contentsOf: URL(fileURLWithPath: onnx)), "unchanged weights give the template's bytes")
        // Rewriting a file in its own format is byte-identical.
        for sample in ["fashion_cnn.safetensors", "fashion_cnn.npz", "fashion_cnn.onnx"] {
            let target = "\(folder)/copy-\(sample)"
            XCTAssertEqual(try CLI.run(["convert", CLI.sample(sample), target]).status, 0)
            XCTAssertEqual(
                try Data(contentsOf: URL(fileURLWithPath: target)),
                try Data(contentsOf: URL(fileURLWithPath: CLI.sample(sample))), sample)
        }
    }

    func testDtypeConversionAndNumPyRefusesBFloat16() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let source = CLI.sample("fashion_cnn.safetensors")
        let bf16 = "\(folder)/w.bf16.safetensors"
        XCTAssertEqual(try CLI.run(["convert", source, bf16, "--dtype", "bf16"]).status, 0)
        let refused = try CLI.run(["convert", bf16, "\(folder)/w.npz"])
        XCTAssertEqual(refused.status, 2)
        XCTAssertTrue(refused.stderr.contains("bfloat16") && refused.stderr.contains("--dtype"), refused.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(folder)/w.npz"))
        XCTAssertEqual(try CLI.run(["convert", bf16, "\(folder)/w.npz", "--dtype", "f32"]).status, 0)
        let diff = try CLI.run(["diff", source, "\(folder)/w.npz", "--json"])
        XCTAssertEqual(diff.status, 1, "bf16 rounding changes values")
        let json = try JSONSerialization.jsonObject(with: Data(diff.stdout.utf8)) as! [String: Any]
        for change in json["changed"] as! [[String: Any]] {
            XCTAssertLessThanOrEqual(change["maxRelativeDifference"] as! Double, 1.0 / 128, "bf16 keeps 8 bits")
        }
    }

    func testBadInputGivesOneLineAndExitTwo() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let original = try Data(contentsOf: URL(fileURLWithPath: CLI.sample("fashion_cnn.safetensors")))
        let truncated = "\(folder)/cut.safetensors"
        try original.prefix(original.count / 2).write(to: URL(fileURLWithPath: truncated))
        let result = try CLI.run(["convert", truncated, "\(folder)/out.npz"])
        XCTAssertEqual(result.status, 2)
        let lines = result.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains(truncated), result.stderr)
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: folder), ["cut.safetensors"], "no output, no temporary")
        let usage = try CLI.run(["convert", CLI.sample("fashion_cnn.onnx"), "\(folder)/x.unknown"])
        XCTAssertEqual(usage.status, 2)
        let overwrite = try CLI.run(["convert", truncated, truncated])
        XCTAssertEqual(overwrite.status, 2)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: truncated)), original.prefix(original.count / 2))
    }
}
