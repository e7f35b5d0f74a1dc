import Foundation
import XCTest

/// The sample models as most users export them — an example batch of one, no dynamic axes, both
/// exporters (`samples/make_fixed_batch.py`) — evaluate and unlearn with no extra flag, exactly as
/// their dynamic-batch exports do, and the written file keeps its own graph.
final class FixedBatchCommandTests: XCTestCase {
    private func evaluation(_ model: String) throws -> [String: Any] {
        let result = try CLI.run(["eval", CLI.sample(model), "--data", CLI.sample("fashion_test.npz"), "--json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertFalse(result.stderr.contains("one sample at a time"), result.stderr)
        return try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
    }

    func testFixedBatchExportsEvaluateLikeDynamicOnes() throws {
        for (fixed, dynamic) in [
            ("fashion_cnn_b1.onnx", "fashion_cnn.onnx"), ("fashion_cnn_dynamo_b1.onnx", "fashion_cnn.onnx"),
            ("fashion_vit_b1.onnx", "fashion_vit.onnx"), ("fashion_vit_dynamo_b1.onnx", "fashion_vit.onnx")
        ] {
            let a = try evaluation(fixed), b = try evaluation(dynamic)
            XCTAssertEqual(a["accuracy"] as? Double, b["accuracy"] as? Double, fixed)
            XCTAssertEqual(a["confusion"] as? [[Int]], b["confusion"] as? [[Int]], fixed)
        }
    }

    func testFixedBatchExportUnlearnsLikeTheDynamicOne() throws {
        let folder = try CLI.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var reports: [[String: Any]] = []
        for model in ["fashion_cnn_dynamo_b1.onnx", "fashion_cnn.onnx"] {
            let result = try CLI.run([
                "unlearn", CLI.sample(model), "--data", CLI.sample("fashion_train.npz"), "--test",
                CLI.sample("fashion_test.npz"), "--forget", "2", "-o", "\(folder)/\(model)", "--json"
            ])
            XCTAssertEqual(result.status, 0, result.stderr)
            reports.append(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any])
        }
        let after = reports.map { ($0["test"] as! [String: Any])["after"] as! [String: Any] }
        XCTAssertEqual(after[0]["forgetAccuracy"] as! Double, after[1]["forgetAccuracy"] as! Double, accuracy: 0.002)
        XCTAssertEqual(after[0]["retainAccuracy"] as! Double, after[1]["retainAccuracy"] as! Double, accuracy: 0.002)
        // The written file still declares a batch of 1: only weights changed.
        let diff = try CLI.run([
            "diff", CLI.sample("fashion_cnn_dynamo_b1.onnx"), "\(folder)/fashion_cnn_dynamo_b1.onnx", "--json"
        ])
        let changes = try JSONSerialization.jsonObject(with: Data(diff.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(changes["graphDifferences"] as? [String], [])
    }
}
