import XCTest
import LetheCore
import LetheFormats
import LetheTestSupport

/// A lazily decoded image folder behind `SampleSet`: the same inputs as reading it whole, each file
/// decoded at most once, only when a batch first needs it; failures recorded, read as zeros.
final class LazyImageSamplesTests: XCTestCase {
    static let pages = TestEnvironment.packageRoot + "/Tests/reference/images/pages"

    private func samples(
        _ root: String, options: ImageOptions = ImageOptions(resize: 8, crop: 6)
    ) throws -> ImageFolderSamples {
        try ImageFolderSamples(
            folder: try ImageFolder.scan(root, names: nil), layout: ImageLayout(channels: 3),
            preprocessing: ImagePreprocessing(), options: options)
    }

    func testLazySetMatchesTheWholeReadAndDecodesEachFileOnce() throws {
        let folder = try samples(Self.pages)
        let whole = try folder.load(0..<folder.count)
        let store = try XCTUnwrap(folder.lazyStore())
        let lazy = SampleSet(lazy: store)
        XCTAssertEqual(lazy.labels, whole.labels)
        XCTAssertEqual(lazy.sampleShape, [3, 6, 6])
        XCTAssertEqual(store.decodedCount, 0, "nothing is read before a batch needs it")

        let picked = lazy.subset([7, 2, 7])
        XCTAssertEqual(store.decodedCount, 0, "a subset only picks indices")
        XCTAssertTrue(picked.batch(0..<3).isBitwiseEqual(to: whole.subset([7, 2, 7]).inputs))
        XCTAssertEqual(store.decodedCount, 2)
        XCTAssertTrue(lazy.batch(1..<4).isBitwiseEqual(to: whole.batch(1..<4)))
        XCTAssertEqual(store.decodedCount, 4, "samples 2 and 7 were kept, 1 and 3 decoded now")
        XCTAssertTrue(lazy.inputs.isBitwiseEqual(to: whole.inputs))
        XCTAssertEqual(store.decodedCount, folder.count)
        XCTAssertTrue(store.failures.isEmpty)
    }

    func testNoLazyStoreWithoutAKnownShapeOrWhenSkipping() throws {
        XCTAssertNil(try samples(Self.pages, options: ImageOptions(resize: 8)).lazyStore())
        XCTAssertNil(try samples(Self.pages, options: ImageOptions(resize: 8, crop: 6, skipBad: true)).lazyStore())
    }

    func testAFailedFileReadsAsZerosAndIsRecorded() throws {
        let root = NSTemporaryDirectory() + "lethe-lazy-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root + "/a", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Self.pages + "/boots/a_rgb.png", toPath: root + "/a/1.png")
        try Data("not an image".utf8).write(to: URL(fileURLWithPath: root + "/a/2.png"))
        let store = try XCTUnwrap(try samples(root).lazyStore())
        let batch = SampleSet(lazy: store).batch(0..<2).floatValues()
        XCTAssertTrue(batch[108...].allSatisfy { $0 == 0 })
        XCTAssertFalse(batch[..<108].allSatisfy { $0 == 0 })
        XCTAssertEqual(store.failures.map(\.index), [1])
        XCTAssertTrue(
            "\(store.failures[0].error)".hasSuffix("a/2.png: not a PNG or JPEG image"), "\(store.failures[0].error)")
    }
}
