import Foundation
import LetheCore
import XCTest

/// Every file of the hostile corpus (`Tests/hostile`, made by `make_corpus.py`) through `lethe`:
/// exit code 2, one line naming the file, no output or temporary left behind, the input untouched,
/// and all of it inside a stated memory bound.
///
/// The bound: `LETHE_MAX_TENSOR_BYTES=64M` caps any one tensor, and the process runs under
/// `ulimit -v` of 1.5 GiB of address space, so an allocation sized by a hostile header crashes the
/// process (and fails the test) instead of passing unnoticed.
final class HostileInputTests: XCTestCase {
    static let corpus = CLI.packageRoot.appendingPathComponent("Tests/hostile")
    static let addressSpaceKiB = 1_572_864

    struct Case: Decodable {
        var file: String
        var command: [String]
        var why: String
    }

    /// Runs `lethe` in `folder` under the memory bound.
    private func runBounded(_ arguments: [String], in folder: String) throws -> CommandResult {
        try CLI.run(
            arguments, in: folder, environment: ["LETHE_MAX_TENSOR_BYTES": "64M"], addressSpaceKiB: Self.addressSpaceKiB
        )
    }

    /// Checks one refused run: exit 2, a single `lethe: <file>: …` line, the folder as it was.
    private func assertRefused(
        _ arguments: [String], in folder: String, naming file: String, _ why: String,
        line: UInt = #line
    ) throws {
        let before = try snapshot(folder)
        let result = try runBounded(arguments, in: folder)
        XCTAssertEqual(result.status, 2, "\(file) (\(why)): \(result.stderr)", line: line)
        let lines = result.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "\(file): \(result.stderr)", line: line)
        XCTAssertTrue(
            result.stderr.hasPrefix("lethe: ") && result.stderr.contains(file),
            "\(file): the message names the file: \(result.stderr)", line: line)
        XCTAssertEqual(try snapshot(folder), before, "\(file): no output, no temporary, input untouched", line: line)
    }

    /// Names and contents of every file in `folder`.
    private func snapshot(_ folder: String) throws -> [String: Data] {
        var files: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: folder) {
            var isFolder: ObjCBool = false
            FileManager.default.fileExists(atPath: "\(folder)/\(name)", isDirectory: &isFolder)
            files[name] =
                isFolder.boolValue
                ? Data("folder".utf8) : try Data(contentsOf: URL(fileURLWithPath: "\(folder)/\(name)"))
        }
        return files
    }

    func testEveryCorpusFileIsRefusedCleanly() throws {
        let cases = try JSONDecoder().decode(
            [Case].self, from: Data(contentsOf: Self.corpus.appendingPathComponent("cases.json")))
        XCTAssertGreaterThanOrEqual(cases.count, 40)
        let files = Self.corpus.appendingPathComponent("files").path
        for item in cases {
            let folder = try CLI.temporaryFolder()
            defer { try? FileManager.default.removeItem(atPath: folder) }
            // Each case runs alone in a folder with only its file (and what it refers to).
            let stem = (item.file as NSString).deletingPathExtension
            for name in try FileManager.default.contentsOfDirectory(atPath: files)
            where name == item.file || name == "run_inputs.npz" || name == stem + ".bin" {
                try FileManager.default.copyItem(atPath: "\(files)/\(name)", toPath: "\(folder)/\(name)")
            }
            let outputs = folder + "/out"
            let arguments = item.command.map {
                $0.replacingOccurrences(of: "{in}", with: item.file)
                    .replacingOccurrences(of: "{out}", with: "out")
                    .replacingOccurrences(of: "{inputs}", with: "run_inputs.npz")
            }
            try FileManager.default.createDirectory(atPath: outputs, withIntermediateDirectories: false)
            try assertRefused(arguments, in: folder, naming: item.file, item.why)
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: outputs), [], item.file)
        }
    }

    /// A sample file cut at many points, and with single bits flipped in its header: every cut is
    /// refused; a flip is either refused cleanly or read (a flipped weight bit is still a valid file).
    func testTruncatedAndBitFlippedSamples() throws {
        for sample in ["fashion_cnn.onnx", "fashion_cnn.safetensors", "fashion_cnn.npz"] {
            let original = try Data(contentsOf: URL(fileURLWithPath: CLI.sample(sample)))
            let folder = try CLI.temporaryFolder()
            defer { try? FileManager.default.removeItem(atPath: folder) }
            let name = "broken." + (sample as NSString).pathExtension
            var generator = SplitMix64(seed: 42)
            let cuts =
                (0..<24).map { _ in Int(generator.next() % UInt64(original.count)) } + [0, 1, 7, 8, original.count - 1]
            for cut in cuts {
                try original.prefix(cut).write(to: URL(fileURLWithPath: "\(folder)/\(name)"))
                try assertRefused(["convert", name, "out.safetensors"], in: folder, naming: name, "cut at \(cut)")
            }
            for _ in 0..<12 {
                var flipped = original
                let index = Int(generator.next() % UInt64(min(original.count, 512)))
                flipped[index] ^= UInt8(1 << (generator.next() % 8))
                try flipped.write(to: URL(fileURLWithPath: "\(folder)/\(name)"))
                let result = try runBounded(["inspect", name], in: folder)
                XCTAssertTrue(
                    result.status == 0 || (result.status == 2 && result.stderr.split(separator: "\n").count == 1),
                    "\(sample) bit flip at \(index): status \(result.status), \(result.stderr)")
            }
        }
    }

    /// External data that leaves the folder through a symbolic link or a hard link is refused.
    func testExternalDataLinksOutOfTheFolderAreRefused() throws {
        let outside = try CLI.temporaryFolder()
        let folder = try CLI.temporaryFolder()
        defer {
            try? FileManager.default.removeItem(atPath: outside)
            try? FileManager.default.removeItem(atPath: folder)
        }
        let files = Self.corpus.appendingPathComponent("files").path
        // The corpus model reads 64 bytes of 'onnx_external_beyond_end.bin' at offset 2^40; point the
        // name at a real file outside instead, once by symlink and once by hard link.
        let model = try Data(contentsOf: URL(fileURLWithPath: "\(files)/onnx_external_missing.onnx"))
        try model.write(to: URL(fileURLWithPath: "\(folder)/linked.onnx"))
        try Data(count: 64).write(to: URL(fileURLWithPath: "\(outside)/secret.bin"))
        try FileManager.default.createSymbolicLink(
            atPath: "\(folder)/not_there.bin", withDestinationPath: "\(outside)/secret.bin")
        try assertRefused(
            ["convert", "linked.onnx", "out.safetensors"], in: folder, naming: "linked.onnx", "symlink out")
        try FileManager.default.removeItem(atPath: "\(folder)/not_there.bin")
        try FileManager.default.linkItem(atPath: "\(outside)/secret.bin", toPath: "\(folder)/not_there.bin")
        try assertRefused(["convert", "linked.onnx", "out.safetensors"], in: folder, naming: "linked.onnx", "hard link")
        // The same bytes as a plain file inside the folder load.
        try FileManager.default.removeItem(atPath: "\(folder)/not_there.bin")
        try Data(count: 64).write(to: URL(fileURLWithPath: "\(folder)/not_there.bin"))
        XCTAssertEqual(try runBounded(["inspect", "linked.onnx"], in: folder).status, 0)
    }
}
