import LetheCore

/// Why a file could not become an image; the folder reader attaches the file's path.
public enum ImageError: LetheError, Equatable {
    /// The first bytes are neither PNG's nor JPEG's signature.
    case notAnImage
    /// libpng or libjpeg refused the file (its message).
    case corrupt(format: String, message: String)
    /// The header declares more pixels than `PixelImage.maxPixels` (the decoder's message).
    case tooLarge(format: String, message: String)
    /// The image is not the size the earlier ones were, and no `--resize`/`--crop` makes them agree.
    case sizeMismatch(width: Int, height: Int, expectedWidth: Int, expectedHeight: Int)

    public var description: String {
        switch self {
        case .notAnImage:
            "not a PNG or JPEG image"
        case .corrupt(let format, let message):
            "corrupt \(format): \(message)"
        case .tooLarge(let format, let message):
            "\(format) too large: \(message)"
        case .sizeMismatch(let width, let height, let expectedWidth, let expectedHeight):
            "the image is \(width)x\(height) but the first one is \(expectedWidth)x\(expectedHeight); give \(Setting.resize) and \(Setting.crop) to make them agree"
        }
    }
}
