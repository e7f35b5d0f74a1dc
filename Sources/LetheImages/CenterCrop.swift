/// torchvision's `CenterCrop(n)`: the n × n window at the centre, its offset `round((size − n)/2)`
/// with Python's round-half-to-even; a side shorter than n is padded with zeros around the image,
/// as torchvision pads before cropping.
public enum CenterCrop {
    public static func crop(_ image: PixelImage, size n: Int) -> PixelImage {
        if image.width == n && image.height == n { return image }
        let top = offset(image.height, n), left = offset(image.width, n)
        let channels = image.channels
        var out = [Float](repeating: 0, count: n * n * channels)
        for y in 0..<n {
            let sourceY = y + top
            guard sourceY >= 0 && sourceY < image.height else { continue }
            for x in 0..<n {
                let sourceX = x + left
                guard sourceX >= 0 && sourceX < image.width else { continue }
                for c in 0..<channels {
                    out[(y * n + x) * channels + c] = image.samples[(sourceY * image.width + sourceX) * channels + c]
                }
            }
        }
        return PixelImage(width: n, height: n, channels: channels, samples: out, isEightBit: image.isEightBit)
    }

    /// Where the window starts in a side of `size`: negative when the side is padded.
    static func offset(_ size: Int, _ n: Int) -> Int {
        if size >= n { return Int((Double(size - n) / 2).rounded(.toNearestOrEven)) }
        return -((n - size) / 2) // torchvision pads (n − size) // 2 before the image
    }
}
