import LetheCore

/// MaxPool (float32, int8, uint8) and AveragePool over 1-, 2- and 3-D windows (NCW, NCHW, NCDHW): pads,
/// auto_pad, ceil_mode, dilations, count_include_pad, and MaxPool's optional Indices output (with storage_order).
///
/// Lower-rank pools run as 3-D ones whose missing leading axes have size 1, so one loop serves all three.
struct PoolKernel: Kernel {
    let geometry: SpatialGeometry
    let isMax: Bool
    let countIncludePad: Bool
    /// MaxPool's second output: the flat position of each maximum in the whole input tensor.
    let wantsIndices: Bool
    /// storage_order=1: the spatial part of each index counts in column-major order.
    let columnMajorIndices: Bool

    init(_ request: KernelRequest) throws {
        isMax = request.node.opType == "MaxPool"
        geometry = try SpatialGeometry(request, kernel: nil)
        guard !geometry.kernel.isEmpty else { throw Unsupported("kernel_shape is missing") }
        guard geometry.kernel.count <= 3 else {
            throw Unsupported("\(geometry.kernel.count)-D pooling (1-D to 3-D are supported)")
        }
        countIncludePad = try request.int("count_include_pad", 0) != 0
        wantsIndices = isMax && request.node.outputs.count > 1 && !request.node.outputs[1].isEmpty
        let storageOrder = try request.int("storage_order", 0)
        guard storageOrder == 0 || storageOrder == 1 else { throw Unsupported("storage_order=\(storageOrder)") }
        columnMajorIndices = storageOrder == 1
    }

    /// One spatial axis: input size, window, and resolved padding and output size.
    struct Axis {
        var size = 1, kernel = 1, stride = 1, dilation = 1, padBegin = 0, padEnd = 0, output = 1

        /// The window taps that land inside the input for a window starting at `start` (may be negative).
        @inline(__always) func taps(from start: Int) -> Range<Int> {
            let first = start < 0 ? (-start + dilation - 1) / dilation : 0
            let last = start >= size ? 0 : Swift.min(kernel, (size - 1 - start) / dilation + 1)
            return first < last ? first..<last : 0..<0
        }

        /// Taps counted by count_include_pad: those inside the padded input (ceil_mode may run past it).
        @inline(__always) func paddedTaps(from start: Int) -> Int {
            let end = Swift.min(start + (kernel - 1) * dilation + 1, size + padEnd)
            return Swift.max(0, (end - start + dilation - 1) / dilation)
        }
    }

    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let input = try inputs.required(0)
        // ONNX allows int8/uint8 MaxPool; float32 holds every such value exactly, so the float loop
        // gives the same maxima (a window entirely in the padding would give -inf; it casts to 0).
        if isMax && (input.dtype == .int8 || input.dtype == .uint8) {
            var outputs = try pool(input.asFloat32(), context)
            outputs[0] = try castTensor(outputs[0], to: input.dtype)
            return outputs
        }
        return try pool(requireFloat(input), context)
    }

    private func pool(_ x: Tensor, _ context: ExecutionContext) throws -> [Tensor] {
        var geometry = self.geometry
        let spatial = geometry.kernel.count
        guard x.rank == spatial + 2 else { throw RuntimeError("pool of \(spatial)-D window on input \(x.shape)") }
        try geometry.complete(rank: spatial)
        let resolved = try geometry.resolve(Array(x.shape[2...]))
        var axes = [Axis](repeating: Axis(), count: 3)
        for i in 0..<spatial {
            axes[3 - spatial + i] = Axis(
                size: x.shape[2 + i], kernel: geometry.kernel[i], stride: geometry.strides[i],
                dilation: geometry.dilations[i], padBegin: resolved.begin[i],
                padEnd: resolved.end[i], output: resolved.output[i])
        }
        let outShape = Array(x.shape[..<2]) + resolved.output
        let y = try Tensor.uninitialized(.float32, outShape)
        let indices = wantsIndices ? try Tensor.uninitialized(.int64, outShape) : nil
        let planes = x.shape[0] * x.shape[1]
        let (ad, ah, aw) = (axes[0], axes[1], axes[2])
        let (depth, height, width) = (ad.size, ah.size, aw.size)
        let planeIn = depth * height * width, planeOut = ad.output * ah.output * aw.output
        guard planes > 0, planeOut > 0 else { return indices.map { [y, $0] } ?? [y] }
        let px = x.floats, py = y.mutableFloats, pi = indices?.mutablePointer(Int64.self)
        let isMax = self.isMax, includePad = countIncludePad, columnMajor = columnMajorIndices
        // The common 2×2 stride-2 max pool over whole windows (no depth window, no indices) has a direct loop.
        let twoByTwo =
            isMax && pi == nil && ad.kernel == 1 && ad.stride == 1 && ad.padBegin == 0
            && ah.kernel == 2 && aw.kernel == 2 && ah.stride == 2 && aw.stride == 2 && ah.dilation == 1
            && aw.dilation == 1
            && ah.padBegin == 0 && aw.padBegin == 0 && 2 * aw.output <= width
        // Each window's in-bounds taps, per axis, worked out once: their integer divisions cost more
        // than the window itself on the small maps of a CNN.
        let zTaps = (0..<ad.output).map { ad.taps(from: $0 * ad.stride - ad.padBegin) }
        let yTaps = (0..<ah.output).map { ah.taps(from: $0 * ah.stride - ah.padBegin) }
        let xTaps = (0..<aw.output).map { aw.taps(from: $0 * aw.stride - aw.padBegin) }
        zTaps.withUnsafeBufferPointer { zTaps in
            yTaps.withUnsafeBufferPointer { yTaps in
                xTaps.withUnsafeBufferPointer { xTaps in
                    Parallel.forEach(planes, threads: context.threads, grain: max(1, 2048 / planeOut)) { range in
                        for plane in range {
                            let input = px + plane * planeIn
                            for oz in 0..<ad.output {
                                let z0 = oz * ad.stride - ad.padBegin, tz = zTaps[oz]
                                for oy in 0..<ah.output {
                                    let row = (oz * ah.output + oy) * aw.output
                                    let output = py + plane * planeOut + row
                                    if twoByTwo && 2 * oy + 1 < height {
                                        let top = input + (oz * height + 2 * oy) * width, bottom = top + width
                                        for ox in 0..<aw.output {
                                            let a = Swift.max(top[2 * ox], top[2 * ox + 1]),
                                                b = Swift.max(bottom[2 * ox], bottom[2 * ox + 1])
                                            output[ox] = Swift.max(a, b)
                                        }
                                        continue
                                    }
                                    let y0 = oy * ah.stride - ah.padBegin, ty = yTaps[oy]
                                    for ox in 0..<aw.output {
                                        let x0 = ox * aw.stride - aw.padBegin, tx = xTaps[ox]
                                        if isMax && pi == nil {
                                            // Without indices only the value matters: a select the compiler keeps
                                            // branch-free (the branchy loop below mispredicts on every new maximum).
                                            // NaN still wins: once `best` is NaN no comparison replaces it.
                                            var best = -Float.infinity
                                            for i in tz {
                                                let iz = z0 + i * ad.dilation
                                                for j in ty {
                                                    let line = input + (iz * height + y0 + j * ah.dilation) * width + x0
                                                    for k in tx {
                                                        let v = line[k * aw.dilation]
                                                        best = v > best || v != v ? v : best
                                                    }
                                                }
                                            }
                                            output[ox] = best
                                        } else if isMax {
                                            // NaN wins, as in PyTorch; among equal maxima the first tap wins, as in ONNX Runtime.
                                            var best = -Float.infinity, at = -1
                                            for i in tz {
                                                let iz = z0 + i * ad.dilation
                                                for j in ty {
                                                    let iy = y0 + j * ah.dilation,
                                                        line = input + (iz * height + iy) * width
                                                    for k in tx {
                                                        let ix = x0 + k * aw.dilation, v = line[ix]
                                                        if v > best || (v.isNaN && !best.isNaN) {
                                                            best = v
                                                            at =
                                                                columnMajor
                                                                ? iz + iy * depth + ix * depth * height
                                                                : (iz * height + iy) * width + ix
                                                        }
                                                    }
                                                }
                                            }
                                            output[ox] = best
                                            if let pi {
                                                pi[plane * planeOut + row + ox] =
                                                    at < 0 ? -1 : Int64(plane * planeIn + at)
                                            }
                                        } else {
                                            var sum: Float = 0
                                            for i in tz {
                                                let iz = z0 + i * ad.dilation
                                                for j in ty {
                                                    let iy = y0 + j * ah.dilation,
                                                        line = input + (iz * height + iy) * width
                                                    if aw.dilation == 1 {
                                                        for k in tx { sum += line[x0 + k] }
                                                    } else {
                                                        for k in tx { sum += line[x0 + k * aw.dilation] }
                                                    }
                                                }
                                            }
                                            let divisor =
                                                includePad
                                                ? ad.paddedTaps(from: z0) * ah.paddedTaps(from: y0)
                                                    * aw.paddedTaps(from: x0)
                                                : tz.count * ty.count * tx.count
                                            output[ox] = divisor > 0 ? sum / Float(divisor) : 0
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return indices.map { [y, $0] } ?? [y]
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
