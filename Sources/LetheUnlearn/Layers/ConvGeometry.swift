import LetheRuntime

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

    public init(
        kernel: [Int], strides: [Int] = [1, 1], dilations: [Int] = [1, 1], pads: [Int] = [0, 0, 0, 0],
        autoPad: String = "NOTSET", group: Int = 1
    ) {
        self.kernel = kernel
        self.strides = strides
        self.dilations = dilations
        self.pads = pads
        self.autoPad = autoPad
        self.group = group
    }

    /// The runtime's window rules for this geometry (one definition of pads and output sizes).
    var window: SpatialGeometry {
        SpatialGeometry(
            kernel: kernel, strides: strides, dilations: dilations, pads: pads,
            autoPad: SpatialGeometry.AutoPad(rawValue: autoPad) ?? .notSet)
    }

    /// Pads `[top, left, bottom, right]` for an input of `height × width`.
    public func resolvedPads(height: Int, width: Int) -> [Int] {
        guard let resolved = try? window.resolve([height, width]) else {
            return autoPad == "NOTSET" ? pads : [0, 0, 0, 0]
        }
        return resolved.begin + resolved.end
    }

    /// Output `height × width` for an input of `height × width` (zero when the window does not fit).
    public func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        guard let resolved = try? window.resolve([height, width]) else { return (0, 0) }
        return (resolved.output[0], resolved.output[1])
    }
}
