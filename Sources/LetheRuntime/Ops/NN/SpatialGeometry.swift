import LetheCore

/// Kernel size, strides, dilations and padding of a convolution or pooling window, and the output
/// size they give for an input size. The one place these rules live: the interpreter runs windows
/// with it and Unlearn cuts statistics rows with it.
public struct SpatialGeometry: Sendable {
    public enum AutoPad: String, Sendable {
        case notSet = "NOTSET", valid = "VALID", sameUpper = "SAME_UPPER", sameLower = "SAME_LOWER"
    }

    public var kernel: [Int]
    public var strides: [Int]
    public var dilations: [Int]
    /// Begin pads then end pads, as ONNX lists them.
    public var pads: [Int]
    public var autoPad: AutoPad
    public var ceilMode: Bool

    /// A window given directly (lengths must match `kernel`'s).
    public init(kernel: [Int], strides: [Int], dilations: [Int], pads: [Int], autoPad: AutoPad, ceilMode: Bool = false)
    {
        self.kernel = kernel
        self.strides = strides
        self.dilations = dilations
        self.pads = pads
        self.autoPad = autoPad
        self.ceilMode = ceilMode
    }

    /// Reads the attributes; `kernel` comes from the weight for Conv and from `kernel_shape` for pools.
    init(_ request: KernelRequest, kernel: [Int]?) throws {
        let autoPadName = try request.string("auto_pad", "NOTSET")
        guard let autoPad = AutoPad(rawValue: autoPadName) else { throw Unsupported("auto_pad '\(autoPadName)'") }
        self.autoPad = autoPad
        self.kernel = try request.ints("kernel_shape") ?? kernel ?? []
        let rank = self.kernel.count
        strides = try request.ints("strides") ?? []
        dilations = try request.ints("dilations") ?? []
        pads = try request.ints("pads") ?? []
        ceilMode = try request.int("ceil_mode", 0) != 0
        if rank > 0 { try check(rank: rank) }
    }

    /// Fills defaults for a window of `rank` spatial axes and validates lengths.
    mutating func complete(rank: Int) throws {
        if kernel.isEmpty { throw RuntimeError("kernel shape is unknown") }
        try check(rank: rank)
    }

    private mutating func check(rank: Int) throws {
        guard kernel.count == rank else {
            throw RuntimeError("kernel has \(kernel.count) axes, input has \(rank) spatial axes")
        }
        if strides.isEmpty { strides = Array(repeating: 1, count: rank) }
        if dilations.isEmpty { dilations = Array(repeating: 1, count: rank) }
        if pads.isEmpty { pads = Array(repeating: 0, count: 2 * rank) }
        guard strides.count == rank, dilations.count == rank, pads.count == 2 * rank else {
            throw RuntimeError("strides/dilations/pads do not match a \(rank)-D window")
        }
        guard strides.allSatisfy({ $0 > 0 }), dilations.allSatisfy({ $0 > 0 }), kernel.allSatisfy({ $0 > 0 }),
            pads.allSatisfy({ $0 >= 0 })
        else {
            throw RuntimeError("window sizes, strides and dilations must be positive and pads non-negative")
        }
    }

    /// Pads (begin, end) and output size per spatial axis for an input of `input` spatial size.
    public func resolve(_ input: [Int]) throws -> (begin: [Int], end: [Int], output: [Int]) {
        let rank = input.count
        var begin = [Int](repeating: 0, count: rank), end = begin, output = begin
        for axis in 0..<rank {
            let extent = (kernel[axis] - 1) * dilations[axis] + 1
            let s = strides[axis]
            switch autoPad {
            case .notSet:
                begin[axis] = pads[axis]
                end[axis] = pads[axis + rank]
                let span = input[axis] + begin[axis] + end[axis] - extent
                guard span >= 0 else {
                    throw RuntimeError(
                        "window \(extent) is larger than padded input \(input[axis] + begin[axis] + end[axis])")
                }
                if ceilMode {
                    var out = (span + s - 1) / s + 1
                    // The last window must start inside the input or the begin padding.
                    if (out - 1) * s >= input[axis] + begin[axis] { out -= 1 }
                    output[axis] = out
                } else {
                    output[axis] = span / s + 1
                }
            case .valid:
                guard input[axis] >= extent else {
                    throw RuntimeError("window \(extent) is larger than input \(input[axis])")
                }
                output[axis] = (input[axis] - extent) / s + 1
            case .sameUpper, .sameLower:
                let out = (input[axis] + s - 1) / s
                let total = max(0, (out - 1) * s + extent - input[axis])
                let small = total / 2, large = total - small
                begin[axis] = autoPad == .sameUpper ? small : large
                end[axis] = autoPad == .sameUpper ? large : small
                output[axis] = out
            }
        }
        return (begin, end, output)
    }
}
