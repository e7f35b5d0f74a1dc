/// A decoded image, row-major and interleaved (`channels` samples a pixel), every sample on the
/// 0–255 scale whatever the file's bit depth, so one `--scale 1/255` serves 8- and 16-bit files.
public struct PixelImage: Sendable, Equatable {
    public var width: Int
    public var height: Int
    /// 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA.
    public var channels: Int
    public var samples: [Float]
    /// Whether every sample is a whole number 0…255 (an 8-bit file), so resizing rounds each pass
    /// to 8 bits as PIL does for its 8-bit modes; 16-bit images keep their fractions.
    public var isEightBit: Bool

    public init(width: Int, height: Int, channels: Int, samples: [Float], isEightBit: Bool) {
        precondition(
            samples.count == width * height * channels, "\(samples.count) samples for \(width)x\(height)x\(channels)")
        self.width = width
        self.height = height
        self.channels = channels
        self.samples = samples
        self.isEightBit = isEightBit
    }

    /// Largest image (in pixels) a decoder accepts, checked from the header before anything is
    /// allocated: 100 megapixels, ample for classifier inputs and far from what would exhaust memory
    /// when several workers decode at once.
    public static let maxPixels = 100_000_000
}
