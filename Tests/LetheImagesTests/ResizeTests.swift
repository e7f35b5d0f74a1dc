import XCTest
@testable import LetheImages

/// The resampling arithmetic by hand, on cases small enough to work out on paper.
final class ResizeTests: XCTestCase {
    func testHalvingAveragesPairsWithTheWidenedTriangle() {
        // 4 → 2: scale 2, support 2; output 0 centres at 1.0 and weighs x = 0, 1, 2 as 0.75, 0.75, 0.25
        // before normalising (PIL's window runs from int(1 − 2 + .5) = 0 to int(1 + 2 + .5) = 3).
        let windows = Resize.windows(inSize: 4, outSize: 2)
        XCTAssertEqual(windows[0].start, 0)
        XCTAssertEqual(windows[0].weights, [0.75 / 1.75, 0.75 / 1.75, 0.25 / 1.75])
        XCTAssertEqual(windows[1].start, 1)
        XCTAssertEqual(windows[1].weights, [0.25 / 1.75, 0.75 / 1.75, 0.75 / 1.75])
    }

    func testEightBitPassRoundsLikePIL() {
        let image = PixelImage(width: 4, height: 1, channels: 1, samples: [0, 100, 200, 255], isEightBit: true)
        let half = Resize.resize(image, width: 2, height: 1)
        // (0·.75 + 100·.75 + 200·.25)/1.75 = 71.43 → 71; (100·.25 + 200·.75 + 255·.75)/1.75 = 209.29 → 209.
        XCTAssertEqual(half.samples, [71, 209])
        let float = Resize.resize(
            PixelImage(width: 4, height: 1, channels: 1, samples: [0, 100, 200, 255], isEightBit: false), width: 2,
            height: 1)
        XCTAssertEqual(Double(float.samples[0]), 125.0 / 1.75, accuracy: 1e-4)
    }

    func testSameSizeIsUntouchedAndUpscalingInterpolates() {
        let image = PixelImage(width: 2, height: 1, channels: 1, samples: [0, 200], isEightBit: true)
        XCTAssertEqual(Resize.resize(image, width: 2, height: 1), image)
        // 2 → 4: centres at 0.25, 0.75, 1.25, 1.75 in source pixels; linear weights between pixel centres.
        XCTAssertEqual(Resize.resize(image, width: 4, height: 1).samples, [0, 50, 150, 200])
    }

    func testShorterSideFollowsTorchvision() {
        XCTAssertEqual(Resize.shorterSide(to: 20, width: 50, height: 37).width, 27) // int(20·50/37) = 27
        XCTAssertEqual(Resize.shorterSide(to: 20, width: 50, height: 37).height, 20)
        XCTAssertEqual(Resize.shorterSide(to: 10, width: 10, height: 33).height, 33)
    }

    func testCentreCropRoundsHalfToEvenAndPads() {
        XCTAssertEqual(CenterCrop.offset(5, 2), 2) // round(1.5) = 2
        XCTAssertEqual(CenterCrop.offset(7, 2), 2) // round(2.5) = 2, Python's rule
        XCTAssertEqual(CenterCrop.offset(2, 5), -1) // padded: (5 − 2) // 2 = 1 before
        let image = PixelImage(width: 2, height: 1, channels: 1, samples: [7, 9], isEightBit: true)
        let padded = CenterCrop.crop(image, size: 3)
        XCTAssertEqual(padded.samples, [0, 0, 0, 7, 9, 0, 0, 0, 0]) // left (3 − 2) // 2 = 0, top 1
    }

    func testChannelConversionFollowsPIL() {
        let rgba = PixelImage(width: 1, height: 1, channels: 4, samples: [255, 128, 0, 3], isEightBit: true)
        XCTAssertEqual(ChannelConversion.convert(rgba, to: 3).samples, [255, 128, 0]) // alpha dropped
        // (255·19595 + 128·38470 + 0 + 32768) >> 16 = 151
        XCTAssertEqual(ChannelConversion.convert(rgba, to: 1).samples, [151])
        let gray = PixelImage(width: 1, height: 1, channels: 2, samples: [42, 0], isEightBit: true)
        XCTAssertEqual(ChannelConversion.convert(gray, to: 3).samples, [42, 42, 42])
    }
}
