import XCTest
import LetheCore
import LetheFormats
import LetheTestSupport
import LetheNumPy

/// The image folder against torchvision's answers on the committed pages
/// (Tests/reference/images/make_image_reference.py): ImageFolder's order and targets, and
/// Resize(20) + CenterCrop(16) + ToTensor on RGB, RGBA, palette, gray, gray + alpha PNGs and
/// baseline, progressive and gray JPEGs of sizes other than Fashion-MNIST's.
final class ImageFolderReferenceTests: XCTestCase {
    static let folder = TestEnvironment.packageRoot + "/Tests/reference/images"

    private func reference(_ name: String) throws -> Tensor {
        let arrays = try NPZFormat.readArrays(path: Self.folder + "/torchvision.npz")
        return try XCTUnwrap(arrays.first { $0.name == name }?.tensor)
    }

    private func load(channels: Int) throws -> SampleSet {
        let folder = try ImageFolder.scan(Self.folder + "/pages", names: nil)
        XCTAssertEqual(folder.classNames.names, ["boots", "coats"])
        let samples = try ImageFolderSamples(
            folder: folder, layout: ImageLayout(channels: channels), preprocessing: ImagePreprocessing(),
            options: ImageOptions(resize: 20, crop: 16))
        return try samples.load(0..<samples.count)
    }

    private func compare(
        _ ours: Tensor, _ theirs: Tensor, file: StaticString = #filePath, line: UInt = #line
    ) -> (mean: Double, max: Double) {
        XCTAssertEqual(ours.shape, theirs.shape, file: file, line: line)
        let a = ours.floatValues(), b = theirs.floatValues()
        let differences = zip(a, b).map { Double(abs($0 - $1)) }
        return (differences.reduce(0, +) / Double(max(differences.count, 1)), differences.max() ?? 0)
    }

    func testResizeAndCropMatchTorchvisionOnRGB() throws {
        let samples = try load(channels: 3)
        XCTAssertEqual(samples.labels, try reference("labels").int64Values().map { Int($0) })
        let (mean, largest) = compare(samples.inputs, try reference("rgb_resize_crop"))
        print("rgb resize+crop vs torchvision: mean |Δ| \(mean * 255)/255, max \(largest * 255)/255")
        XCTAssertLessThanOrEqual(mean, 1.0 / 255)
        // PIL's weights, rounding and pass order are reproduced, and both decode with libpng and
        // libjpeg-turbo: expect no difference at all.
        XCTAssertEqual(largest, 0, accuracy: 1e-6)
    }

    func testResizeAndCropMatchTorchvisionOnGray() throws {
        let samples = try load(channels: 1)
        let (mean, largest) = compare(samples.inputs, try reference("gray_resize_crop"))
        print("gray resize+crop vs torchvision: mean |Δ| \(mean * 255)/255, max \(largest * 255)/255")
        XCTAssertEqual(largest, 0, accuracy: 1e-6)
    }
}
