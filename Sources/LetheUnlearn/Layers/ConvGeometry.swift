/// A convolution's window: the node's own kernel size, strides, dilations, pads and groups, for 1-D
/// and 2-D convolutions (1-D is handled as 2-D with a height of 1).
public struct ConvGeometry: Sendable, Hashable, Codable {
    /// Kernel height and width.
    public var kernel: [Int]
    public var strides: [Int]
    public var dilations: [Int]
    /// `[top, left, bottom, right]`; ignored unless `autoPad` is `NOTSET`.
    public var pads: [Int]
    /// ONNX `auto_pad`: `NOTSET`, `SAME_UPPER`, `SAME_LOWER` or `VALID`; resolved from the input's size at run time.
    public var autoPad: String
    public var group: Int

    public init(kernel: [Int], strides: [Int] = [1, 1], dilations: [Int] = [1, 1], pads: [Int] = [0, 0, 0, 0],
                autoPad: String = "NOTSET", group: Int = 1) {
        self.kernel = kernel
        self.strides = strides
        self.dilations = dilations
        self.pads = pads
        self.autoPad = autoPad
        self.group = group
    }

    /// Pads `[top, left, bottom, right]` for an input of `height × width`.
    public func resolvedPads(height: Int, width: Int) -> [Int] {
        let size = [height, width]
        switch autoPad {
        case "VALID":
            return [0, 0, 0, 0]
        case "SAME_UPPER", "SAME_LOWER":
            var begin = [0, 0], end = [0, 0]
            for axis in 0..<2 {
                let output = (size[axis] + strides[axis] - 1) / strides[axis]
                let total = max(0, (output - 1) * strides[axis] + (kernel[axis] - 1) * dilations[axis] + 1 - size[axis])
                let small = total / 2
                begin[axis] = autoPad == "SAME_UPPER" ? small : total - small
                end[axis] = total - begin[axis]
            }
            return [begin[0], begin[1], end[0], end[1]]
        default:
            return pads
        }
    }

    /// Output `height × width` for an input of `height × width` (zero or negative when the window does not fit).
    public func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        let p = resolvedPads(height: height, width: width)
        func extent(_ size: Int, _ axis: Int) -> Int {
            let span = size + p[axis] + p[axis + 2] - dilations[axis] * (kernel[axis] - 1) - 1
            return span < 0 ? 0 : span / strides[axis] + 1
        }
        return (extent(height, 0), extent(width, 1))
    }
}
