import LetheCore

/// Picks the decoder by the file's signature, not its name, so a mislabelled file still decodes
/// and a stray non-image is named as such.
public enum ImageDecoder {
    public static func decode(
        _ data: UnsafeRawBufferPointer, maxPixels: Int = PixelImage.maxPixels
    ) throws -> PixelImage {
        if data.starts(with: PNGDecoder.signature) { return try PNGDecoder.decode(data, maxPixels: maxPixels) }
        if data.starts(with: JPEGDecoder.signature) { return try JPEGDecoder.decode(data, maxPixels: maxPixels) }
        throw ImageError.notAnImage
    }

    public static func decode(_ bytes: [UInt8]) throws -> PixelImage {
        try bytes.withUnsafeBytes { try decode($0) }
    }

    /// Decodes the file at `path` (mapped, not copied). Errors do not name the file: callers that
    /// read many attach the path once.
    public static func decode(path: String) throws -> PixelImage {
        let file = try MappedFile(path: path)
        return try decode(file.bytes)
    }
}
