import Foundation
import XCTest
import LetheCore
import LetheFormats
import LetheImages

/// Image folders through the commands: Fashion-MNIST written as PNG and JPEG folders (by
/// Tests/reference/images/write_folder.py, with PIL) against the same arrays fed through `.npz`.
final class ImageFolderCommandTests: XCTestCase {
    static let referenceFolder = CLI.packageRoot.appendingPathComponent("Tests/reference/images").path
    static let labels = referenceFolder + "/fashion_labels.txt"
    static let names = [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"
    ]

    /// Writes `source` as a folder of `format` images under a new temporary folder; returns that folder
    /// (holding images/, ordered.npz and decoded.npz).
    private func writeFolder(_ source: String, _ format: String, count: Int? = nil) throws -> String {
        let folder = try CLI.temporaryFolder()
        let script = Self.referenceFolder + "/write_folder.py"
        var arguments = [script, CLI.sample(source), folder, format, "--names", Self.labels]
        if let count { arguments += ["--count", String(count)] }
        _ = try CLI.python(
            "import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')", arguments)
        return folder
    }

    private func json(
        _ result: CommandResult, file: StaticString = #filePath, line: UInt = #line
    ) throws -> [String: Any] {
        XCTAssertEqual(result.status, 0, result.stderr, file: file, line: line)
        return try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], file: file, line: line)
    }

    private func tensor(_ path: String) throws -> SampleSet {
        try SampleFile.load(path, inputDType: .float32, preprocessing: ImagePreprocessing())
    }

    private func folderSamples(_ path: String, channels: Int = 1) throws -> SampleSet {
        let folder = try ImageFolder.scan(path, names: ClassNames(Self.names))
        let samples = try ImageFolderSamples(
            folder: folder, layout: ImageLayout(channels: channels), preprocessing: ImagePreprocessing(),
            options: ImageOptions())
        return try samples.load(0..<samples.count)
    }

    func testPNGFolderGivesExactlyTheNPZInputsAndPredictions() throws {
        let folder = try writeFolder("fashion_test.npz", "png")
        // The decoded, normalised inputs are the .npz's bit for bit, in the same order with the same labels.
        let images = try folderSamples(folder + "/images")
        let arrays = try tensor(folder + "/ordered.npz")
        XCTAssertEqual(images.labels, arrays.labels)
        XCTAssertEqual(images.inputs.shape, arrays.inputs.shape)
        XCTAssertTrue(images.inputs.isBitwiseEqual(to: arrays.inputs), "PNG decoding changed a pixel")

        let model = CLI.sample("fashion_cnn.onnx")
        let fromFolder = try json(
            try CLI.run([
                "eval", model, "--data", folder + "/images", "--labels", Self.labels, "--json", "--batch", "37"
            ]))
        let fromArrays = try json(try CLI.run(["eval", model, "--data", folder + "/ordered.npz", "--json"]))
        XCTAssertEqual(fromFolder["confusion"] as? [[Int]], fromArrays["confusion"] as? [[Int]])
        XCTAssertEqual(fromFolder["accuracy"] as? Double, fromArrays["accuracy"] as? Double)
        XCTAssertEqual(fromFolder["samples"] as? Int, 1000)
        XCTAssertEqual(fromFolder["classNames"] as? [String], Self.names)
        XCTAssertNil(fromArrays["classNames"])

        let text = try CLI.run(["eval", model, "--data", folder + "/images", "--labels", Self.labels])
        XCTAssertTrue(text.stdout.contains("Ankle boot"), text.stdout)
    }

    func testJPEGFolderMatchesPILsDecodingAndPredictions() throws {
        let folder = try writeFolder("fashion_test.npz", "jpg")
        let images = try folderSamples(folder + "/images")
        let pil = try tensor(folder + "/decoded.npz")
        XCTAssertEqual(images.labels, pil.labels)
        let differences = zip(images.inputs.floatValues(), pil.inputs.floatValues()).map { abs($0 - $1) * 255 }
        let largest = differences.max() ?? 0, mean = differences.reduce(0, +) / Float(differences.count)
        print("JPEG decoding vs PIL: max |Δ| \(largest)/255, mean \(mean)/255")
        // Both use libjpeg-turbo's accurate integer DCT and fancy upsampling; library versions may round
        // a sample differently, never by more than one step.
        XCTAssertLessThanOrEqual(largest, 1.0001)
        XCTAssertLessThanOrEqual(mean, 0.01)

        let model = CLI.sample("fashion_cnn.onnx")
        let fromFolder = try json(
            try CLI.run(["eval", model, "--data", folder + "/images", "--labels", Self.labels, "--json"]))
        let fromPIL = try json(try CLI.run(["eval", model, "--data", folder + "/decoded.npz", "--json"]))
        if largest == 0 {
            XCTAssertEqual(fromFolder["confusion"] as? [[Int]], fromPIL["confusion"] as? [[Int]])
        }
        XCTAssertEqual(fromFolder["accuracy"] as? Double ?? 0, fromPIL["accuracy"] as? Double ?? 1, accuracy: 0.005)
    }

    func testUnlearnForgetsByNameExactlyAsByIDOnTheArrays() throws {
        let folder = try writeFolder("fashion_train.npz", "png")
        let model = CLI.sample("fashion_cnn.onnx")
        let byName = try CLI.run([
            "unlearn", model, "--data", folder + "/images", "--labels", Self.labels, "--forget", "Dress",
            "--samples", "300", "-o", folder + "/by-name.onnx", "--report", folder + "/report.html", "--json"
        ])
        let report = try json(byName)
        let settings = try XCTUnwrap(report["settings"] as? [String: Any])
        XCTAssertEqual(settings["forgetClasses"] as? [Int], [3])
        XCTAssertEqual(report["classNames"] as? [String], Self.names)
        let html = try String(contentsOfFile: folder + "/report.html", encoding: .utf8)
        XCTAssertTrue(html.contains("3 Dress"), "the HTML report names the forgotten class")

        let byID = try CLI.run([
            "unlearn", model, "--data", folder + "/ordered.npz", "--forget", "3", "--samples", "300",
            "-o", folder + "/by-id.onnx"
        ])
        XCTAssertEqual(byID.status, 0, byID.stderr)
        XCTAssertTrue(byID.stdout.contains("forget classes 3;"), byID.stdout)
        XCTAssertEqual(
            FileManager.default.contents(atPath: folder + "/by-name.onnx"),
            FileManager.default.contents(atPath: folder + "/by-id.onnx"),
            "the folder and the arrays hold the same samples, so the patch must be the same")

        // With --skip-bad every image is decoded up front (skipping renumbers the samples), and that is
        // refused, not attempted, past the tensor limit (the model's largest tensor, 0.8 MB, fits in
        // 2 MB; 3000 decoded images take 9.4 MB).
        let capped = try CLI.run(
            [
                "stats", model, "--data", folder + "/images", "--labels", Self.labels, "--forget", "Dress",
                "--skip-bad",
                "-o", folder + "/s.safetensors"
            ], environment: ["LETHE_MAX_TENSOR_BYTES": "2M"])
        XCTAssertEqual(capped.status, 2)
        XCTAssertTrue(
            capped.stderr.contains(
                "holding 3000 samples of 1×28×28 float32 in memory would take more than the limit of 2097152 bytes"),
            capped.stderr)
    }

    func testUnknownClassNameExits2ListingTheKnownOnesAndWritesNothing() throws {
        let folder = try writeFolder("fashion_test.npz", "png")
        let model = CLI.sample("fashion_cnn.onnx")
        let result = try CLI.run([
            "unlearn", model, "--data", folder + "/images", "--labels", Self.labels, "--forget", "Dress,Coatt",
            "-o", folder + "/u.onnx", "--report", folder + "/r.html"
        ])
        XCTAssertEqual(result.status, 2)
        XCTAssertTrue(result.stderr.contains("unknown class 'Coatt'"), result.stderr)
        XCTAssertTrue(result.stderr.contains(Self.names.joined(separator: ", ")), result.stderr)
        XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/u.onnx"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/r.html"))

        // Without names, only ids are accepted; stats refuses the same way.
        let noNames = try CLI.run([
            "unlearn", model, "--data", folder + "/ordered.npz", "--forget", "Dress", "-o", folder + "/u.onnx"
        ])
        XCTAssertEqual(noNames.status, 2)
        XCTAssertTrue(noNames.stderr.contains("no class names are known"), noNames.stderr)
        let stats = try CLI.run([
            "stats", model, "--data", folder + "/images", "--labels", Self.labels, "--forget", "Dres", "-o",
            folder + "/s.safetensors"
        ])
        XCTAssertEqual(stats.status, 2)
        XCTAssertTrue(stats.stderr.contains("known classes: T-shirt/top"), stats.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/s.safetensors"))
        let named = try CLI.run([
            "stats", model, "--data", folder + "/images", "--labels", Self.labels, "--forget", "Dress",
            "--samples", "20", "--layers", "fc2", "-o", folder + "/s.safetensors"
        ])
        XCTAssertEqual(named.status, 0, named.stderr)
    }

    func testStatsReadsOnlyTheFilesItsPassesUse() throws {
        let folder = try writeFolder("fashion_test.npz", "png")
        let images = folder + "/images"
        let model = CLI.sample("fashion_cnn.onnx")
        let arguments = [
            "stats", model, "--data", images, "--labels", Self.labels, "--forget", "Dress", "--samples", "90",
            "--layers", "fc2", "-o", folder + "/s.safetensors"
        ]
        // The last file of a retain class is not among the first 10 per class the statistics use:
        // it is never read, so its damage goes unnoticed.
        try Data("not an image".utf8).write(to: URL(fileURLWithPath: images + "/Trouser/zzz.png"))
        let unread = try CLI.run(arguments)
        XCTAssertEqual(unread.status, 0, unread.stderr)
        // The first file of the forget class is used: its damage stops the run, naming it, and
        // nothing is written.
        try FileManager.default.removeItem(atPath: folder + "/s.safetensors")
        try Data("not an image".utf8).write(to: URL(fileURLWithPath: images + "/Dress/0000.png"))
        let used = try CLI.run(arguments)
        XCTAssertEqual(used.status, 2)
        XCTAssertTrue(used.stderr.contains("Dress/0000.png: not a PNG or JPEG image"), used.stderr)
        XCTAssertEqual(used.stderr.split(separator: "\n").count, 1, used.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/s.safetensors"))
    }

    func testBadFilesAreNamedOrSkippedWithACount() throws {
        let folder = try writeFolder("fashion_test.npz", "png", count: 30)
        let images = folder + "/images"
        let classFolder =
            images + "/" + (try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: images).sorted().last))
        try Data("not an image\n".utf8).write(to: URL(fileURLWithPath: classFolder + "/notes.txt"))
        let good = try XCTUnwrap(
            try FileManager.default.contentsOfDirectory(atPath: classFolder).sorted().first { $0.hasSuffix(".png") })
        let bytes = try XCTUnwrap(FileManager.default.contents(atPath: classFolder + "/" + good))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: classFolder + "/truncated.png"))
        let model = CLI.sample("fashion_cnn.onnx")

        let strict = try CLI.run(["eval", model, "--data", images, "--labels", Self.labels])
        XCTAssertEqual(strict.status, 2)
        XCTAssertTrue(
            strict.stderr.contains("notes.txt: not a PNG or JPEG image")
                || strict.stderr.contains("truncated.png: corrupt PNG"), strict.stderr)
        XCTAssertEqual(strict.stderr.split(separator: "\n").count, 1, strict.stderr)

        let lenient = try CLI.run(["eval", model, "--data", images, "--labels", Self.labels, "--skip-bad", "--json"])
        let metrics = try json(lenient)
        XCTAssertEqual(metrics["samples"] as? Int, 30)
        XCTAssertTrue(lenient.stderr.contains("skipped 2 unreadable files of 32"), lenient.stderr)

        // A folder not among the names is refused with the names listed.
        try FileManager.default.createDirectory(atPath: images + "/Hat", withIntermediateDirectories: true)
        try bytes.write(to: URL(fileURLWithPath: images + "/Hat/a.png"))
        let unknown = try CLI.run(["eval", model, "--data", images, "--labels", Self.labels, "--skip-bad"])
        XCTAssertEqual(unknown.status, 2)
        XCTAssertTrue(unknown.stderr.contains("folder 'Hat' is not a class name"), unknown.stderr)
    }

    func testPagesOfOtherSizesNeedResizeAndCropToFitTheModel() throws {
        let model = CLI.sample("fashion_cnn.onnx")
        let pages = Self.referenceFolder + "/pages"
        let unfit = try CLI.run(["eval", model, "--data", pages])
        XCTAssertEqual(unfit.status, 2)
        XCTAssertTrue(
            unfit.stderr.contains(
                "a_rgb.png: the image is 50x37 after preprocessing but the model takes 28x28; give --resize and --crop"),
            unfit.stderr)
        // RGB, RGBA, palette and JPEG pages become the model's one gray channel; "boots" and "coats"
        // are matched to the model's classes through the names.
        let labels = try CLI.temporaryFolder() + "/labels.txt"
        try Data("shoes\nboots\ncoats\n".utf8).write(to: URL(fileURLWithPath: labels))
        let wrongCount = try CLI.run([
            "eval", model, "--data", pages, "--labels", labels, "--resize", "28", "--crop", "28"
        ])
        XCTAssertEqual(wrongCount.status, 2)
        XCTAssertTrue(
            wrongCount.stderr.contains("labels.txt: 3 class names for a model with 10 outputs"), wrongCount.stderr)
        try Data(
            ((0..<10).map { ["boots", "coats"].indices.contains($0 - 7) ? ["boots", "coats"][$0 - 7] : "c\($0)" }
                .joined(separator: "\n")).utf8
        )
        .write(to: URL(fileURLWithPath: labels))
        let fitted = try json(
            try CLI.run(["eval", model, "--data", pages, "--labels", labels, "--resize", "28", "--crop", "28", "--json"]
            ))
        XCTAssertEqual(fitted["samples"] as? Int, 10)
        XCTAssertEqual(fitted["perClassCount"] as? [String: Int], ["7": 5, "8": 5])
    }

    func testTruncatedJPEGIsCorruptNotGrayFilled() throws {
        let folder = try writeFolder("fashion_test.npz", "jpg", count: 3)
        let classFolder =
            folder + "/images/"
            + (try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: folder + "/images").sorted().first))
        let name = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: classFolder).sorted().first)
        let bytes = try XCTUnwrap(FileManager.default.contents(atPath: classFolder + "/" + name))
        try bytes.prefix(bytes.count * 2 / 3).write(to: URL(fileURLWithPath: classFolder + "/" + name))
        XCTAssertThrowsError(try ImageDecoder.decode(path: classFolder + "/" + name)) { error in
            XCTAssertTrue("\(error)".hasPrefix("corrupt JPEG: Premature end of JPEG file"), "\(error)")
        }
        let result = try CLI.run(["eval", CLI.sample("fashion_cnn.onnx"), "--data", folder + "/images"])
        XCTAssertEqual(result.status, 2)
        XCTAssertTrue(result.stderr.contains(name + ": corrupt JPEG"), result.stderr)
    }

    func testAbsurdImageSizeIsRefusedBeforeAllocating() throws {
        let folder = try CLI.temporaryFolder()
        try FileManager.default.createDirectory(atPath: folder + "/images/0", withIntermediateDirectories: true)
        // A valid PNG declaring 100000 × 100000 pixels, with a few bytes of image data behind it.
        _ = try CLI.python(
            """
            import struct, sys, zlib
            def chunk(kind, data):
                return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff)
            header = struct.pack('>IIBBBBB', 100000, 100000, 8, 2, 0, 0, 0)
            open(sys.argv[1], 'wb').write(b'\\x89PNG\\r\\n\\x1a\\n' + chunk(b'IHDR', header) + chunk(b'IDAT', zlib.compress(b'\\x00' * 64)) + chunk(b'IEND', b''))
            """, [folder + "/images/0/huge.png"])
        let result = try CLI.run(
            ["eval", CLI.sample("fashion_cnn.onnx"), "--data", folder + "/images"], addressSpaceKiB: 4_000_000)
        XCTAssertEqual(result.status, 2, result.stderr)
        XCTAssertTrue(
            result.stderr.contains("huge.png: PNG too large: the image is 100000x100000, over the limit"), result.stderr
        )

        // A JPEG whose frame header claims 60000 × 60000 (patched into a real 8 × 8 file).
        try FileManager.default.removeItem(atPath: folder + "/images/0/huge.png")
        _ = try CLI.python(
            """
            import io, struct, sys
            from PIL import Image
            out = io.BytesIO(); Image.new('L', (8, 8), 128).save(out, 'JPEG'); data = bytearray(out.getvalue())
            sof = data.index(b'\\xff\\xc0'); data[sof + 5:sof + 9] = struct.pack('>HH', 60000, 60000)
            open(sys.argv[1], 'wb').write(bytes(data))
            """, [folder + "/images/0/huge.jpg"])
        let jpeg = try CLI.run(
            ["eval", CLI.sample("fashion_cnn.onnx"), "--data", folder + "/images"], addressSpaceKiB: 4_000_000)
        XCTAssertEqual(jpeg.status, 2, jpeg.stderr)
        XCTAssertTrue(
            jpeg.stderr.contains("huge.jpg: JPEG too large: the image is 60000x60000, over the limit"), jpeg.stderr)
    }

    func testSixteenBitPNGsKeepTheirPrecision() throws {
        let folder = try CLI.temporaryFolder()
        // 16-bit gray and RGB PNGs written by hand (PIL cannot write 16-bit RGB), with known samples.
        _ = try CLI.python(
            """
            import struct, sys, zlib
            def chunk(kind, data):
                return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff)
            def png(path, colour, channels, samples, width, height):
                rows = b''.join(b'\\x00' + b''.join(struct.pack('>H', v) for v in samples[y * width * channels:(y + 1) * width * channels]) for y in range(height))
                header = struct.pack('>IIBBBBB', width, height, 16, colour, 0, 0, 0)
                open(path, 'wb').write(b'\\x89PNG\\r\\n\\x1a\\n' + chunk(b'IHDR', header) + chunk(b'IDAT', zlib.compress(rows)) + chunk(b'IEND', b''))
            png(sys.argv[1] + '/gray16.png', 0, 1, [0, 257, 65535, 1000, 30000, 12345], 3, 2)
            png(sys.argv[1] + '/rgb16.png', 2, 3, [65535, 0, 514, 1, 2, 3], 2, 1)
            """, [folder])
        let gray = try ImageDecoder.decode(path: folder + "/gray16.png")
        XCTAssertEqual(gray.channels, 1)
        XCTAssertFalse(gray.isEightBit)
        XCTAssertEqual(gray.samples, [0, 257, 65535, 1000, 30000, 12345].map { Float($0) / 257 })
        let rgb = try ImageDecoder.decode(path: folder + "/rgb16.png")
        XCTAssertEqual([rgb.width, rgb.height, rgb.channels], [2, 1, 3])
        XCTAssertEqual(rgb.samples, [65535, 0, 514, 1, 2, 3].map { Float($0) / 257 })
    }

    func testClassNamesFromTheModelsMetadata() throws {
        let folder = try CLI.temporaryFolder()
        let named = folder + "/named.onnx"
        _ = try CLI.python(
            """
            import json, sys, onnx
            model = onnx.load(sys.argv[1])
            entry = model.metadata_props.add()
            entry.key, entry.value = 'labels', json.dumps({str(i): n for i, n in enumerate(sys.argv[3:])})
            onnx.save(model, sys.argv[2])
            """, [CLI.sample("fashion_cnn.onnx"), named] + Self.names)
        let metrics = try json(try CLI.run(["eval", named, "--data", CLI.sample("fashion_test.npz"), "--json"]))
        XCTAssertEqual(metrics["classNames"] as? [String], Self.names)
        let stats = try CLI.run([
            "stats", named, "--data", CLI.sample("fashion_train.npz"), "--forget", "Coat", "--samples", "60",
            "--layers", "fc2", "-o", folder + "/s.safetensors"
        ])
        XCTAssertEqual(stats.status, 0, stats.stderr)
        let unknown = try CLI.run([
            "stats", named, "--data", CLI.sample("fashion_train.npz"), "--forget", "Hat", "-o",
            folder + "/t.safetensors"
        ])
        XCTAssertEqual(unknown.status, 2)
        XCTAssertTrue(unknown.stderr.contains("known classes: T-shirt/top, Trouser"), unknown.stderr)

        // Metadata under a names key that does not fit the outputs is noted and ignored, not fatal.
        let other = folder + "/other.onnx"
        _ = try CLI.python(
            """
            import sys, onnx
            model = onnx.load(sys.argv[1])
            entry = model.metadata_props.add()
            entry.key, entry.value = 'names', "{0: 'person', 1: 'bicycle'}"
            onnx.save(model, sys.argv[2])
            """, [CLI.sample("fashion_cnn.onnx"), other])
        let ignored = try CLI.run(["eval", other, "--data", CLI.sample("fashion_test.npz"), "--json"])
        XCTAssertNil(try json(ignored)["classNames"])
        XCTAssertTrue(
            ignored.stderr.contains(
                "ignoring the class names in its metadata: 2 class names for a model with 10 outputs"), ignored.stderr)
    }
}
