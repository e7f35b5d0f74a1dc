import XCTest
import LetheCore
import LetheIR
import LetheFormats
import LetheTestSupport
import LetheImages

/// What a model's input asks of images, and the normalisation applied to them.
final class ImageLayoutTests: XCTestCase {
    func testLayoutFromTheInputShape() throws {
        let gray = ValueInfo(name: "x", dtype: .float32, shape: [.symbolic("N"), .fixed(1), .fixed(28), .fixed(28)])
        XCTAssertEqual(try ImageLayout.of(gray), ImageLayout(channels: 1, height: 28, width: 28))
        let free = ValueInfo(name: "x", dtype: .float32, shape: [.symbolic("N"), .fixed(3), .unknown, .symbolic("W")])
        XCTAssertEqual(try ImageLayout.of(free), ImageLayout(channels: 3))
        let plain = ValueInfo(name: "x", dtype: .float32, shape: [.symbolic("N"), .fixed(28), .fixed(28)])
        XCTAssertEqual(try ImageLayout.of(plain), ImageLayout(channels: 1, channelAxis: false, height: 28, width: 28))
        XCTAssertEqual(try ImageLayout.of(nil), ImageLayout(channels: 3))
        XCTAssertThrowsError(
            try ImageLayout.of(ValueInfo(name: "x", shape: [.fixed(1), .fixed(5), .fixed(8), .fixed(8)]))
        ) {
            XCTAssertTrue("\($0)".contains("5 channels"), "\($0)")
        }
        XCTAssertThrowsError(try ImageLayout.of(ValueInfo(name: "x", shape: [.fixed(1), .fixed(784)])))
    }

    func testPerChannelNormalisationAndLayouts() throws {
        let pages = TestEnvironment.packageRoot + "/Tests/reference/images/pages"
        let folder = try ImageFolder.scan(pages, names: nil)
        let options = ImageOptions(resize: 8, crop: 6)
        let raw = try ImageFolderSamples(
            folder: folder, layout: ImageLayout(channels: 3), preprocessing: ImagePreprocessing(scale: 1),
            options: options
        ).load(0..<2)
        let mean: [Float] = [0.485, 0.456, 0.406], std: [Float] = [0.229, 0.224, 0.225]
        let normalised = try ImageFolderSamples(
            folder: folder, layout: ImageLayout(channels: 3),
            preprocessing: ImagePreprocessing(scale: 1.0 / 255, mean: mean, std: std),
            options: options
        ).load(0..<2)
        XCTAssertEqual(normalised.inputs.shape, [2, 3, 6, 6])
        let x = raw.inputs.floatValues(), y = normalised.inputs.floatValues()
        for i in x.indices {
            let c = (i / 36) % 3
            XCTAssertEqual(y[i], (x[i] * (1.0 / 255) - mean[c]) / std[c], accuracy: 1e-5)
        }
        let plain = try ImageFolderSamples(
            folder: folder, layout: ImageLayout(channels: 1, channelAxis: false),
            preprocessing: ImagePreprocessing(), options: options
        ).load(0..<3)
        XCTAssertEqual(plain.inputs.shape, [3, 6, 6])
        XCTAssertThrowsError(
            try ImageFolderSamples(
                folder: folder, layout: ImageLayout(channels: 3),
                preprocessing: ImagePreprocessing(mean: [0, 0]), options: options)
        ) {
            XCTAssertTrue("\($0)".contains("mean has 2 values for 3 channels"), "\($0)")
        }
    }
}
