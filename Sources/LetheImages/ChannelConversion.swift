/// Gives an image the channel count a model takes, as PIL's `convert` does: alpha is dropped (not
/// composited), gray is repeated into RGB, and RGB becomes gray with ITU-R 601-2 luma in PIL's
/// fixed point (`(19595 R + 38470 G + 7471 B + 0x8000) >> 16`) so 8-bit results match PIL's.
public enum ChannelConversion {
    public static func convert(_ image: PixelImage, to channels: Int) -> PixelImage {
        precondition(channels == 1 || channels == 3, "only 1- and 3-channel outputs")
        if image.channels == channels { return image }
        let pixels = image.width * image.height
        let inChannels = image.channels, colour = image.channels >= 3, eightBit = image.isEightBit
        var out = [Float](repeating: 0, count: pixels * channels)
        image.samples.withUnsafeBufferPointer { source in
            out.withUnsafeMutableBufferPointer { target in
                for p in 0..<pixels {
                    let base = p * inChannels
                    if channels == 3 {
                        for c in 0..<3 { target[p * 3 + c] = source[base + (colour ? c : 0)] }
                    } else if colour {
                        let (r, g, b) = (source[base], source[base + 1], source[base + 2])
                        target[p] =
                            eightBit
                            ? Float((Int(r) * 19595 + Int(g) * 38470 + Int(b) * 7471 + 0x8000) >> 16)
                            : (r * 19595 + g * 38470 + b * 7471) / 65536
                    } else {
                        target[p] = source[base]
                    }
                }
            }
        }
        return PixelImage(
            width: image.width, height: image.height, channels: channels, samples: out, isEightBit: eightBit)
    }
}
