import LetheCore

/// Resize (and the older Upsample) in nearest and linear modes over any axes, with the ONNX
/// coordinate transformations and nearest rounding modes.
struct ResizeKernel: Kernel {
    let linear: Bool
    let coordinateMode: String
    let nearestMode: String
    let attributeScales: [Float]?
    let legacy: Bool
    let excludeOutside: Bool

    init(_ request: KernelRequest) throws {
        let mode = try request.string("mode", "nearest")
        guard mode == "nearest" || mode == "linear" || mode == "bilinear" else {
            throw Unsupported("Resize mode '\(mode)'")
        }
        linear = mode != "nearest"
        legacy = request.node.opType == "Upsample" || request.opset < 11
        coordinateMode = try request.string("coordinate_transformation_mode", legacy ? "asymmetric" : "half_pixel")
        guard
            [
                "half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel", "tf_half_pixel_for_nn",
                "half_pixel_symmetric"
            ].contains(coordinateMode)
        else {
            throw Unsupported("coordinate_transformation_mode '\(coordinateMode)'")
        }
        nearestMode = try request.string("nearest_mode", legacy ? "floor" : "round_prefer_floor")
        guard ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"].contains(nearestMode) else {
            throw Unsupported("nearest_mode '\(nearestMode)'")
        }
        attributeScales = try request.floats("scales")
        if try request.string("keep_aspect_ratio_policy", "stretch") != "stretch" {
            throw Unsupported("keep_aspect_ratio_policy")
        }
        if request.node.attribute("axes") != nil { throw Unsupported("Resize axes attribute") }
        if try request.int("antialias", 0) != 0 { throw Unsupported("antialias=1") }
        excludeOutside = try request.int("exclude_outside", 0) != 0
        if excludeOutside { throw Unsupported("exclude_outside=1") }
    }

    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let x = try requireFloat(inputs.required(0))
        var scales: [Float]? = attributeScales
        var sizes: [Int]? = nil
        if legacy && attributeScales == nil, let s = inputs.optional(1) { scales = s.floatValues() }
        if !legacy {
            if let s = inputs.optional(2), s.elementCount > 0 { scales = s.floatValues() }
            if let s = inputs.optional(3), s.elementCount > 0 { sizes = try s.intValues() }
        }
        let rank = x.rank
        if let scales, !scales.allSatisfy({ $0.isFinite && $0 > 0 && $0 < 1e6 }) {
            throw RuntimeError("Resize scales \(scales) must be positive and finite")
        }
        if let sizes, !sizes.allSatisfy({ $0 >= 0 && $0 < 1 << 32 }) {
            throw RuntimeError("Resize sizes \(sizes) out of range")
        }
        var outShape = x.shape
        var axisScale = [Float](repeating: 1, count: rank)
        if let sizes {
            guard sizes.count == rank else { throw RuntimeError("Resize sizes \(sizes) for rank \(rank)") }
            outShape = sizes
            for axis in 0..<rank { axisScale[axis] = Float(sizes[axis]) / Float(max(1, x.shape[axis])) }
        } else if let scales {
            guard scales.count == rank else { throw RuntimeError("Resize scales \(scales) for rank \(rank)") }
            axisScale = scales
            for axis in 0..<rank { outShape[axis] = Int((Float(x.shape[axis]) * scales[axis]).rounded(.down)) }
        } else {
            throw RuntimeError("Resize needs scales or sizes")
        }
        // For each axis and output index: the two source indices and the weight of the second.
        var low: [[Int]] = [], high: [[Int]] = [], weight: [[Float]] = []
        for axis in 0..<rank {
            let inSize = x.shape[axis], outSize = outShape[axis], scale = axisScale[axis]
            var l = [Int](repeating: 0, count: outSize), h = l, w = [Float](repeating: 0, count: outSize)
            for o in 0..<outSize {
                // ONNX measures the resized length as in·scale (unrounded) when scales are given.
                let resizedLength = sizes == nil ? Float(inSize) * scale : Float(outSize)
                let coordinate = sourceCoordinate(o, scale: scale, inSize: inSize, resizedLength: resizedLength)
                if linear {
                    let c = min(max(coordinate, 0), Float(inSize - 1))
                    let f = Int(c.rounded(.down))
                    l[o] = f
                    h[o] = min(f + 1, inSize - 1)
                    w[o] = c - Float(f)
                } else {
                    var n: Int
                    switch nearestMode {
                    case "floor": n = Int(coordinate.rounded(.down))
                    case "ceil": n = Int(coordinate.rounded(.up))
                    case "round_prefer_ceil":
                        n = Int((coordinate).rounded(.toNearestOrAwayFromZero))
                        if coordinate - coordinate.rounded(.down) == 0.5 { n = Int(coordinate.rounded(.up)) }
                    default:
                        n = Int(coordinate.rounded(.toNearestOrAwayFromZero))
                        if coordinate - coordinate.rounded(.down) == 0.5 { n = Int(coordinate.rounded(.down)) }
                    }
                    n = min(max(n, 0), inSize - 1)
                    l[o] = n; h[o] = n; w[o] = 0
                }
            }
            low.append(l); high.append(h); weight.append(w)
        }
        let out = try Tensor.uninitialized(.float32, outShape)
        let px = x.floats, py = out.mutableFloats
        let strides = contiguousStrides(x.shape)
        let count = out.elementCount
        var position = [Int](repeating: 0, count: rank)
        let interpolated = (0..<rank).filter { axis in linear && axisScale[axis] != 1 || x.shape[axis] != outShape[axis]
        }
        for flat in 0..<count {
            var base = 0
            for axis in 0..<rank { base += low[axis][position[axis]] * strides[axis] }
            if !linear {
                py[flat] = px[base]
            } else {
                // Multilinear: sum over the 2^k corners of the interpolated axes.
                var total: Float = 0
                let k = interpolated.count
                for corner in 0..<(1 << k) {
                    var offset = base, factor: Float = 1
                    for (bit, axis) in interpolated.enumerated() {
                        let p = position[axis], w = weight[axis][p]
                        if corner & (1 << bit) != 0 {
                            offset += (high[axis][p] - low[axis][p]) * strides[axis]
                            factor *= w
                        } else {
                            factor *= 1 - w
                        }
                    }
                    if factor != 0 { total += factor * px[offset] }
                }
                py[flat] = total
            }
            advance(&position, in: outShape)
        }
        return [out]
    }

    private func sourceCoordinate(_ o: Int, scale: Float, inSize: Int, resizedLength: Float) -> Float {
        let x = Float(o)
        switch coordinateMode {
        case "asymmetric": return x / scale
        case "align_corners": return resizedLength == 1 ? 0 : x * Float(inSize - 1) / (resizedLength - 1)
        case "pytorch_half_pixel": return resizedLength > 1 ? (x + 0.5) / scale - 0.5 : 0
        case "tf_half_pixel_for_nn": return (x + 0.5) / scale
        case "half_pixel_symmetric":
            let adjustment = resizedLength.rounded(.down) / (scale * Float(inSize))
            let center = Float(inSize) / 2
            let offset = center * (1 - adjustment)
            return offset + (x + 0.5) / scale - 0.5
        default: return (x + 0.5) / scale - 0.5
        }
    }
}
