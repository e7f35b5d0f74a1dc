import LetheCore

/// ConvTranspose for 1-D, 2-D and 3-D inputs: a GEMM with the transposed filter, then col2im adds each
/// column into the output window it came from. Lower ranks run as 3-D with leading axes of size 1.
struct ConvTransposeKernel: Kernel {
    let group: Int
    let strides: [Int]?
    let dilations: [Int]?
    let pads: [Int]?
    let outputPadding: [Int]?
    let outputShape: [Int]?
    let autoPad: String

    init(_ request: KernelRequest) throws {
        group = try request.int("group", 1)
        strides = try request.ints("strides")
        dilations = try request.ints("dilations")
        pads = try request.ints("pads")
        outputPadding = try request.ints("output_padding")
        outputShape = try request.ints("output_shape")
        autoPad = try request.string("auto_pad", "NOTSET")
        guard ["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"].contains(autoPad) else {
            throw Unsupported("auto_pad '\(autoPad)'")
        }
        if let w = request.constant(1), w.rank > 5 { throw Unsupported("\(w.rank - 2)-D ConvTranspose") }
        guard group >= 1 else { throw Unsupported("group \(group)") }
    }

    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let x = try requireFloat(inputs.required(0))
        let w = try inputs.required(1).asFloat32()
        let b = inputs.optional(2)?.asFloat32()
        guard (3...5).contains(x.rank), w.rank == x.rank else {
            throw RuntimeError("ConvTranspose supports 1-D to 3-D, got input \(x.shape) and weight \(w.shape)")
        }
        let rank = x.rank - 2
        let n = x.shape[0], c = x.shape[1]
        guard c % group == 0, w.shape[0] == c else {
            throw RuntimeError("ConvTranspose weight \(w.shape) does not fit input \(x.shape)")
        }
        let mg = w.shape[1], m = mg * group, cg = c / group
        let kernel = Array(w.shape[2...])
        let s = strides ?? Array(repeating: 1, count: rank)
        let d = dilations ?? Array(repeating: 1, count: rank)
        let op = outputPadding ?? Array(repeating: 0, count: rank)
        var begin = [Int](repeating: 0, count: rank), out = begin
        guard s.count == rank, d.count == rank, op.count == rank, (outputShape?.count ?? rank) >= rank else {
            throw RuntimeError("ConvTranspose attribute lengths do not match rank \(rank)")
        }
        for axis in 0..<rank {
            let input = x.shape[axis + 2]
            let full = s[axis] * (input - 1) + op[axis] + (kernel[axis] - 1) * d[axis] + 1
            var target: Int? = outputShape.map { $0[$0.count - rank + axis] }
            if target == nil && (autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER") { target = input * s[axis] }
            if let target {
                let total = full - target
                // Floor division: a negative total (output larger than the full transpose) pads the end.
                let half = total >= 0 ? total / 2 : -((-total + 1) / 2)
                begin[axis] = autoPad == "SAME_UPPER" ? half : total - half
                out[axis] = target
            } else {
                let p = pads ?? Array(repeating: 0, count: 2 * rank)
                guard p.count == 2 * rank else { throw RuntimeError("pads length \(p.count)") }
                begin[axis] = p[axis]
                out[axis] = full - p[axis] - p[axis + rank]
            }
            guard out[axis] > 0 else { throw RuntimeError("ConvTranspose output size \(out[axis]) is not positive") }
        }
        // Every per-axis quantity as (depth, height, width), size-1 axes in front for lower ranks.
        func full3(_ values: [Int], _ fill: Int) -> [Int] { Array(repeating: fill, count: 3 - rank) + values }
        let size = full3(Array(x.shape[2...]), 1), k = full3(kernel, 1), st = full3(s, 1), dl = full3(d, 1)
        let front = full3(begin, 0), o = full3(out, 1)
        let (depth, height, width) = (size[0], size[1], size[2])
        let (kd, kh, kw) = (k[0], k[1], k[2])
        let (od, oh, ow) = (o[0], o[1], o[2])
        let (sd, sh, sw) = (st[0], st[1], st[2]), (dd, dh, dw) = (dl[0], dl[1], dl[2])
        let (pf, pt, pl) = (front[0], front[1], front[2])
        let y = try Tensor.zeros(.float32, [n, m] + out)
        let taps = kd * kh * kw
        let rows = mg * taps, plane = depth * height * width, outPlane = od * oh * ow
        // The column buffer is scratch memory the size of a tensor: held to the same limit.
        _ = try Tensor.checkedByteCount(.float32, [rows, plane])
        let px = x.floats, pw = w.floats, py = y.mutableFloats
        let gemmThreads = n >= context.threads ? 1 : context.threads
        Parallel.forEach(n, threads: n >= context.threads ? context.threads : 1) { images in
            let col = UnsafeMutablePointer<Float>.allocate(capacity: max(1, rows * plane))
            defer { col.deallocate() }
            for image in images {
                for g in 0..<group {
                    MatrixMultiply.multiply(
                        transposeA: true, transposeB: false, m: rows, n: plane, k: cg,
                        a: pw + g * cg * rows, lda: rows,
                        b: px + (image * c + g * cg) * plane, ldb: plane,
                        beta: 0, c: col, ldc: plane, threads: gemmThreads)
                    for r in 0..<rows {
                        let channel = g * mg + r / taps, tap = r % taps
                        let a = tap / (kh * kw), i = (tap / kw) % kh, j = tap % kw
                        let target = py + (image * m + channel) * outPlane
                        let source = col + r * plane
                        for z in 0..<depth {
                            let oz = z * sd - pf + a * dd
                            if oz < 0 || oz >= od { continue }
                            for h in 0..<height {
                                let oy = h * sh - pt + i * dh
                                if oy < 0 || oy >= oh { continue }
                                let line = target + (oz * oh + oy) * ow, input = source + (z * height + h) * width
                                for xw in 0..<width {
                                    let ox = xw * sw - pl + j * dw
                                    if ox < 0 || ox >= ow { continue }
                                    line[ox] += input[xw]
                                }
                            }
                        }
                    }
                }
                if let b {
                    let pb = b.floats
                    for channel in 0..<m {
                        let target = py + (image * m + channel) * outPlane
                        for i in 0..<outPlane { target[i] += pb[channel] }
                    }
                }
            }
        }
        return [y]
    }
}
