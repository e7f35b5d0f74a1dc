import CPNG

/// Decodes PNG files with the system's libpng: every color type (gray, gray + alpha, RGB, RGBA,
/// palette, with tRNS transparency as alpha) and bit depth (1–16).
public enum PNGDecoder {
    /// The 8-byte signature every PNG starts with.
    public static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// `maxPixels`: the largest width × height accepted, checked from the header.
    public static func decode(
        _ data: UnsafeRawBufferPointer, maxPixels: Int = PixelImage.maxPixels
    ) throws -> PixelImage {
        do {
            var source = lethe_png_source()
            source.data = data.baseAddress?.assumingMemoryBound(to: UInt8.self)
            source.size = data.count
            var width: UInt32 = 0, height: UInt32 = 0
            var channels: Int32 = 0, depth: Int32 = 0
            // First the header alone, so the pixel buffer is sized (and limited) before allocation.
            let header = lethe_png_decode(&source, &width, &height, &channels, &depth, maxPixels, nil, 0)
            if header == -2 { throw ImageError.tooLarge(format: "PNG", message: message(&source)) }
            guard header == 0 else { throw ImageError.corrupt(format: "PNG", message: message(&source)) }
            let count = Int(width) * Int(height) * Int(channels)
            if depth == 16 {
                var raw = [UInt16](repeating: 0, count: count)
                let status = raw.withUnsafeMutableBytes { out in
                    lethe_png_decode(
                        &source, &width, &height, &channels, &depth, maxPixels,
                        out.baseAddress!.assumingMemoryBound(to: UInt8.self), out.count)
                }
                guard status == 0 else { throw ImageError.corrupt(format: "PNG", message: message(&source)) }
                // v · 255/65535 = v/257: the same 0–255 scale as 8-bit files, keeping the fraction.
                return PixelImage(
                    width: Int(width), height: Int(height), channels: Int(channels),
                    samples: raw.map { Float($0) / 257 }, isEightBit: false)
            }
            var raw = [UInt8](repeating: 0, count: count)
            let status = raw.withUnsafeMutableBufferPointer { out in
                lethe_png_decode(&source, &width, &height, &channels, &depth, maxPixels, out.baseAddress!, out.count)
            }
            guard status == 0 else { throw ImageError.corrupt(format: "PNG", message: message(&source)) }
            return PixelImage(
                width: Int(width), height: Int(height), channels: Int(channels),
                samples: raw.map { Float($0) }, isEightBit: true)
        }
    }

    private static func message(_ source: inout lethe_png_source) -> String {
        withUnsafeBytes(of: &source.message) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
    }
}
