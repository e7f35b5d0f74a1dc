import CJPEG

/// Decodes baseline and progressive JPEG files with the system's libjpeg-turbo, with its default
/// (accurate integer) DCT and fancy upsampling, as PIL does; grayscale stays one channel and
/// YCbCr becomes RGB.
public enum JPEGDecoder {
    /// JPEG files start with SOI (FF D8) followed by a marker's FF.
    public static let signature: [UInt8] = [0xFF, 0xD8, 0xFF]

    /// `maxPixels`: the largest width × height accepted, checked from the header.
    public static func decode(
        _ data: UnsafeRawBufferPointer, maxPixels: Int = PixelImage.maxPixels
    ) throws -> PixelImage {
        do {
            let bytes = data.baseAddress?.assumingMemoryBound(to: UInt8.self)
            var width: UInt32 = 0, height: UInt32 = 0
            var channels: Int32 = 0
            var message = [CChar](repeating: 0, count: Int(JMSG_LENGTH_MAX) + 1)
            func text(_ message: [CChar]) -> String {
                String(decoding: message.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
            func fail() -> ImageError { .corrupt(format: "JPEG", message: text(message)) }
            // The header first, so the pixel buffer is sized (and limited) before allocation.
            let header = lethe_jpeg_decode(bytes, data.count, &width, &height, &channels, maxPixels, nil, 0, &message)
            guard header == 0 else {
                if header == -2 { throw ImageError.tooLarge(format: "JPEG", message: text(message)) }
                throw fail()
            }
            var raw = [UInt8](repeating: 0, count: Int(width) * Int(height) * Int(channels))
            let status = raw.withUnsafeMutableBufferPointer { out in
                lethe_jpeg_decode(
                    bytes, data.count, &width, &height, &channels,
                    maxPixels, out.baseAddress!, out.count, &message)
            }
            guard status == 0 else { throw fail() }
            return PixelImage(
                width: Int(width), height: Int(height), channels: Int(channels),
                samples: raw.map { Float($0) }, isEightBit: true)
        }
    }
}
