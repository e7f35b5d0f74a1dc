import LetheCore

/// Receptive-field patches of a convolution's input, one row per output position, flattened in the
/// weight's order `C, kh, kw` for one group (DESIGN §4). This is statistics bookkeeping on a tapped
/// activation, not a convolution: no layer arithmetic happens here.
struct PatchRows {
    let channels: Int
    let height: Int
    let width: Int
    let geometry: ConvGeometry
    let pads: [Int]
    let outputHeight: Int
    let outputWidth: Int
    // The window as scalars: the fill loop runs once per row and must not touch arrays.
    private let kh, kw, strideY, strideX, dilationY, dilationX, padTop, padLeft, groupChannels: Int

    /// For an input of `channels × height × width` per image.
    init(channels: Int, height: Int, width: Int, geometry: ConvGeometry) {
        self.channels = channels
        self.height = height
        self.width = width
        self.geometry = geometry
        self.pads = geometry.resolvedPads(height: height, width: width)
        let size = geometry.outputSize(height: height, width: width)
        self.outputHeight = size.height
        self.outputWidth = size.width
        kh = geometry.kernel[0]
        kw = geometry.kernel[1]
        strideY = geometry.strides[0]
        strideX = geometry.strides[1]
        dilationY = geometry.dilations[0]
        dilationX = geometry.dilations[1]
        padTop = pads[0]
        padLeft = pads[1]
        groupChannels = channels / max(geometry.group, 1)
    }

    var positions: Int { outputHeight * outputWidth }
    var rowLength: Int { groupChannels * kh * kw }

    /// Writes the patch of output `position` (row-major over the output map) of `group`, reading the
    /// image at `image` (`channels × height × width` floats).
    @inline(__always)
    func fill(row: UnsafeMutablePointer<Float>, image: UnsafePointer<Float>, group: Int, position: Int) {
        let oy = position / outputWidth, ox = position % outputWidth
        let y0 = oy * strideY - padTop, x0 = ox * strideX - padLeft
        let dy = dilationY, dx = dilationX
        let plane = height * width
        var out = row
        let inside = y0 >= 0 && y0 + (kh - 1) * dy < height && x0 >= 0 && x0 + (kw - 1) * dx < width
        if inside {
            // Most windows lie inside the map: no bounds test per value.
            for c in 0..<groupChannels {
                let source = image + (group * groupChannels + c) * plane + y0 * width + x0
                for ky in 0..<kh {
                    let line = source + ky * dy * width
                    for kx in 0..<kw { out[kx] = line[kx * dx] }
                    out += kw
                }
            }
            return
        }
        for c in 0..<groupChannels {
            let source = image + (group * groupChannels + c) * plane
            for ky in 0..<kh {
                let y = y0 + ky * dy
                if y < 0 || y >= height {
                    out.update(repeating: 0, count: kw)
                } else {
                    let line = source + y * width
                    for kx in 0..<kw {
                        let x = x0 + kx * dx
                        out[kx] = (x >= 0 && x < width) ? line[x] : 0
                    }
                }
                out += kw
            }
        }
    }

    /// Writes the patches of every output position of `group` transposed: line `i` (lines `lineStride`
    /// floats apart from `target`) gets element `i` of each patch, positions in order. A line is a run
    /// of one input row shifted by its kernel offset, so this copies rows where `fill` gathers values.
    func fillLines(_ target: UnsafeMutablePointer<Float>, lineStride: Int, image: UnsafePointer<Float>, group: Int) {
        let plane = height * width
        var line = target
        for c in 0..<groupChannels {
            let source = image + (group * groupChannels + c) * plane
            for ky in 0..<kh {
                for kx in 0..<kw {
                    // Output columns whose input column lies inside the map: [lower, upper).
                    let offset = kx * dilationX - padLeft
                    let lower = min(outputWidth, offset >= 0 ? 0 : (-offset + strideX - 1) / strideX)
                    let upper = max(lower, min(outputWidth, max(0, (width - offset + strideX - 1) / strideX)))
                    for oy in 0..<outputHeight {
                        let out = line + oy * outputWidth
                        let y = oy * strideY - padTop + ky * dilationY
                        guard y >= 0, y < height else {
                            out.update(repeating: 0, count: outputWidth)
                            continue
                        }
                        let row = source + y * width + offset
                        out.update(repeating: 0, count: lower)
                        if strideX == 1 {
                            (out + lower).update(from: row + lower, count: upper - lower)
                        } else {
                            for ox in lower..<upper { out[ox] = row[ox * strideX] }
                        }
                        (out + upper).update(repeating: 0, count: outputWidth - upper)
                    }
                    line += lineStride
                }
            }
        }
    }
}

/// Which output positions of one image feed the statistics: all of them up to `cap`, else `cap` of
/// them drawn with a generator seeded by the run's seed and the image's identity.
enum PositionSampler {
    static func positions(total: Int, cap: Int?, seed: UInt64) -> [Int] {
        guard let cap, total > cap else { return Array(0..<total) }
        var generator = SplitMix64(seed: seed)
        var pool = Array(0..<total)
        for i in 0..<cap {
            let j = i + Int(generator.next() % UInt64(total - i))
            pool.swapAt(i, j)
        }
        return pool[0..<cap].sorted()
    }
}
