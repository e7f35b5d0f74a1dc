import LetheCore

/// MaxPool and AveragePool over 1-D and 2-D windows (pads, auto_pad, ceil_mode, dilations,
/// count_include_pad).
struct PoolKernel: Kernel {
    let geometry: SpatialGeometry
    let isMax: Bool
    let countIncludePad: Bool

    init(_ request: KernelRequest) throws {
        isMax = request.node.opType == "MaxPool"
        geometry = try SpatialGeometry(request, kernel: nil)
        guard !geometry.kernel.isEmpty else { throw Unsupported("kernel_shape is missing") }
        guard geometry.kernel.count <= 2 else { throw Unsupported("\(geometry.kernel.count)-D pooling") }
        countIncludePad = try request.int("count_include_pad", 0) != 0
        if isMax, request.node.outputs.count > 1, !request.node.outputs[1].isEmpty {
            throw Unsupported("MaxPool Indices output")
        }
        if try request.int("storage_order", 0) != 0 { throw Unsupported("storage_order=1") }
    }

    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let x = try requireFloat(inputs.required(0))
        var geometry = self.geometry
        guard x.rank == geometry.kernel.count + 2 else { throw RuntimeError("pool of \(geometry.kernel.count)-D window on input \(x.shape)") }
        try geometry.complete(rank: x.rank - 2)
        let resolved = try geometry.resolve(Array(x.shape[2...]))
        let twoD = x.rank == 4
        let height = twoD ? x.shape[2] : 1, width = x.shape[x.rank - 1]
        let kh = twoD ? geometry.kernel[0] : 1, kw = geometry.kernel.last!
        let sh = twoD ? geometry.strides[0] : 1, sw = geometry.strides.last!
        let dh = twoD ? geometry.dilations[0] : 1, dw = geometry.dilations.last!
        let pt = twoD ? resolved.begin[0] : 0, pl = resolved.begin.last!
        let pbottom = twoD ? resolved.end[0] : 0, pr = resolved.end.last!
        let oh = twoD ? resolved.output[0] : 1, ow = resolved.output.last!
        let outShape = Array(x.shape[..<2]) + resolved.output
        let y = try Tensor.uninitialized(.float32, outShape)
        let planes = x.shape[0] * x.shape[1]
        let px = x.floats, py = y.mutableFloats
        let isMax = self.isMax, includePad = countIncludePad
        Parallel.forEach(planes, threads: context.threads, grain: max(1, 2048 / max(1, oh * ow))) { range in
            for plane in range {
                let input = px + plane * height * width, output = py + plane * oh * ow
                for oy in 0..<oh {
                    // The common 2×2 stride-2 max pool over whole windows, without the general loop.
                    if isMax && kh == 2 && kw == 2 && sh == 2 && sw == 2 && dh == 1 && dw == 1 && pt == 0 && pl == 0
                        && 2 * oy + 1 < height && 2 * ow <= width {
                        let top = input + 2 * oy * width, bottom = top + width, line = output + oy * ow
                        for ox in 0..<ow {
                            let a = Swift.max(top[2 * ox], top[2 * ox + 1]), b = Swift.max(bottom[2 * ox], bottom[2 * ox + 1])
                            line[ox] = Swift.max(a, b)
                        }
                        continue
                    }
                    for ox in 0..<ow {
                        let y0 = oy * sh - pt, x0 = ox * sw - pl
                        var best = -Float.infinity, sum: Float = 0, count = 0
                        if dh == 1 && dw == 1 {
                            // Clip the window to the image once instead of testing every tap.
                            let yStart = max(y0, 0), yEnd = min(y0 + kh, height)
                            let xStart = max(x0, 0), xEnd = min(x0 + kw, width)
                            if yStart < yEnd && xStart < xEnd {
                                for iy in yStart..<yEnd {
                                    let line = input + iy * width
                                    if isMax {
                                        for ix in xStart..<xEnd { let v = line[ix]; if v > best || v.isNaN { best = v } }
                                    } else {
                                        for ix in xStart..<xEnd { sum += line[ix] }
                                    }
                                }
                                count = (yEnd - yStart) * (xEnd - xStart)
                            }
                        } else {
                        for i in 0..<kh {
                            let iy = y0 + i * dh
                            if iy < 0 || iy >= height { continue }
                            for j in 0..<kw {
                                let ix = x0 + j * dw
                                if ix < 0 || ix >= width { continue }
                                let v = input[iy * width + ix]
                                if isMax { if v > best || v.isNaN { best = v } } else { sum += v }
                                count += 1
                            }
                        }
                        }
                        if isMax {
                            output[oy * ow + ox] = best
                        } else {
                            var divisor = count
                            if includePad {
                                // The window clipped to the padded input (ceil_mode may run past it).
                                let yEnd = min(y0 + (kh - 1) * dh + 1, height + pbottom)
                                let xEnd = min(x0 + (kw - 1) * dw + 1, width + pr)
                                let rowsCovered = (yEnd - y0 + dh - 1) / dh
                                let colsCovered = (xEnd - x0 + dw - 1) / dw
                                divisor = rowsCovered * colsCovered
                            }
                            output[oy * ow + ox] = divisor > 0 ? sum / Float(divisor) : 0
                        }
                    }
                }
            }
        }
        return [y]
    }
}

/// GlobalAveragePool and GlobalMaxPool over every axis after the channel axis.
struct GlobalPoolKernel: Kernel {
    let isMax: Bool
    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let x = try requireFloat(inputs.required(0))
        guard x.rank >= 2 else { throw RuntimeError("global pool input \(x.shape) has no spatial axes") }
        let inner = x.shape[2...].reduce(1, *)
        let planes = x.shape[0] * x.shape[1]
        let y = try Tensor.uninitialized(.float32, Array(x.shape[..<2]) + Array(repeating: 1, count: x.rank - 2))
        let px = x.floats, py = y.mutableFloats, isMax = self.isMax
        Parallel.forEach(planes, threads: context.threads, grain: max(1, 16384 / max(1, inner))) { range in
            for plane in range {
                let source = px + plane * inner
                if isMax {
                    var best = -Float.infinity
                    for i in 0..<inner where source[i] > best { best = source[i] }
                    py[plane] = best
                } else {
                    var sum: Float = 0
                    for i in 0..<inner { sum += source[i] }
                    py[plane] = sum / Float(inner)
                }
            }
        }
        return [y]
    }
}
