import LetheCore

/// Gemm: `Y = alpha · op(A) · op(B) + beta · C`, C broadcast to `M × N`, with a fused activation.
struct GemmKernel: Kernel {
    let transposeA: Bool
    let transposeB: Bool
    let alpha: Float
    let beta: Float
    let b: Tensor?
    let c: Tensor?
    let activation: Activation?
    /// `beta · C` as one value per output column when C is a constant row vector (a Linear layer's
    /// bias): the product then starts from it without broadcasting C each run.
    let rowBias: Tensor?
    /// The oneDNN matmul for constant weights and a constant row-vector C (the bias of a Linear
    /// layer), nil where it does not apply (see `linearLayer`).
    let dnnl: DNNLMatMul?

    /// `allowDNNL: false` keeps every product on `MatrixMultiply` (tests compare the two).
    init(_ request: KernelRequest, allowDNNL: Bool = true) throws {
        self.init(
            transposeA: try request.int("transA", 0) != 0, transposeB: try request.int("transB", 0) != 0,
            alpha: try request.float("alpha", 1), beta: try request.float("beta", 1),
            b: request.constant(1)?.asFloat32(), c: request.constant(2)?.asFloat32(),
            cIsOmitted: !request.hasInput(2), activation: request.activation, allowDNNL: allowDNNL,
            precision: request.precision)
    }

    private init(
        transposeA: Bool, transposeB: Bool, alpha: Float, beta: Float, b: Tensor?, c: Tensor?, cIsOmitted: Bool,
        activation: Activation?, allowDNNL: Bool, precision: ProductPrecision
    ) {
        self.transposeA = transposeA
        self.transposeB = transposeB
        self.alpha = alpha
        self.beta = beta
        self.b = b
        self.c = c
        self.activation = activation
        var bias: Tensor?? = nil
        if let b, b.rank == 2 { bias = Self.rowBias(c, beta: beta, columns: transposeB ? b.shape[0] : b.shape[1]) }
        rowBias = bias ?? nil
        if allowDNNL, !transposeA, let b, b.rank == 2, c != nil || cIsOmitted, let bias {
            dnnl = linearLayer(
                weight: b, transposed: transposeB, scale: alpha, bias: bias, activation: activation,
                precision: precision)
        } else {
            dnnl = nil
        }
    }

    /// This Gemm with the constant right-hand side `b` in place of its own (same C, scales and
    /// activation; oneDNN's matmul where this one has it and `b` still suits it).
    func replacingWeight(_ b: Tensor) -> GemmKernel {
        GemmKernel(
            transposeA: transposeA, transposeB: transposeB, alpha: alpha, beta: beta, b: b, c: c,
            cIsOmitted: c == nil, activation: activation, allowDNNL: dnnl != nil,
            precision: dnnl?.bfloat16 == true ? .bfloat16 : .float32)
    }

    /// `beta · C` as one bias value per output column, `.some(nil)` when C adds nothing, nil when C
    /// varies down the rows (then it is no bias).
    static func rowBias(_ c: Tensor?, beta: Float, columns: Int) -> Tensor?? {
        guard let c, beta != 0 else { return .some(nil) }
        guard c.rank <= 2, c.shape.dropLast().allSatisfy({ $0 == 1 }), c.elementCount == 1 || c.elementCount == columns
        else { return nil }
        let values = c.floats
        return Tensor(shape: [columns], values: (0..<columns).map { beta * values[c.elementCount == 1 ? 0 : $0] })
    }

    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let a = try requireFloat(inputs.required(0))
        let b = try self.b ?? requireFloat(inputs.required(1))
        let c = try self.c ?? inputs.optional(2).map { try requireFloat($0) }
        guard a.rank == 2, b.rank == 2 else {
            throw RuntimeError("Gemm needs 2-D inputs, got \(a.shape) and \(b.shape)")
        }
        let m = transposeA ? a.shape[1] : a.shape[0], k = transposeA ? a.shape[0] : a.shape[1]
        let n = transposeB ? b.shape[0] : b.shape[1], kb = transposeB ? b.shape[1] : b.shape[0]
        guard k == kb else { throw RuntimeError("Gemm inner sizes differ: A \(a.shape), B \(b.shape)") }
        let y = try Tensor.uninitialized(.float32, [m, n])
        if let dnnl, DNNLMatMul.pays(rows: m, dnnl),
            try dnnl.run(rows: m, x: a.floats, y: y.mutableFloats, threads: context.threads)
        {
            return [y]
        }
        var gemmBeta: Float = 0
        if let rowBias {
            guard rowBias.elementCount == n else {
                throw RuntimeError("Gemm C has \(rowBias.elementCount) columns, the product \(n)")
            }
            // Every row starts from the bias; written here, the pages of a recycled buffer are warm
            // for the product (a broadcast into a zeroed M × N copy faulted 29 MB a ViT-B/16 layer).
            let bias = rowBias.floats, py = y.mutableFloats
            Parallel.forEach(m, threads: context.threads, grain: max(1, 16384 / max(1, n))) { rows in
                for r in rows { (py + r * n).update(from: bias, count: n) }
            }
            gemmBeta = 1
        } else if let c, beta != 0 {
            guard c.rank <= 2, (try broadcastShapes(c.shape, [m, n])) == [m, n] else {
                throw RuntimeError("Gemm C of shape \(c.shape) does not broadcast to \([m, n])")
            }
            let filled = try broadcastFloat(Tensor(zeros: .float32, shape: [m, n]), c, context) { _, v in v }
            y.mutableFloats.update(from: filled.floats, count: m * n)
            if beta != 1 { for i in 0..<(m * n) { y.mutableFloats[i] *= beta } }
            gemmBeta = 1
        }
        MatrixMultiply.multiply(
            transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
            a: a.floats, lda: a.shape[1], b: b.floats, ldb: b.shape[1],
            beta: gemmBeta, c: y.mutableFloats, ldc: n, threads: context.threads)
        activation?.apply(y.mutableFloats, m * n, threads: context.threads)
        return [y]
    }
}

/// MatMul with NumPy semantics (1-D promotion, broadcast batch axes). A constant 2-D right-hand
/// side (a Linear weight) runs as one GEMM over all rows; batched products run batches in parallel.
struct MatMulKernel: Kernel {
    let b: Tensor?
    let bias: Tensor?
    let activation: Activation?
    /// Whether B is a 2-D weight stored `N × K` that the product reads transposed
    /// (`KernelRequest.weightTransposed`).
    let transposedB: Bool
    /// The oneDNN matmul for a constant 2-D right-hand side, nil where it does not apply.
    let dnnl: DNNLMatMul?

    /// `allowDNNL: false` keeps every product on `MatrixMultiply` (tests compare the two).
    init(_ request: KernelRequest, allowDNNL: Bool = true) throws {
        b = request.constant(1)?.asFloat32()
        bias = request.fusedBias?.asFloat32()
        activation = request.activation
        transposedB = request.weightTransposed
        if allowDNNL, let b, b.rank == 2 {
            dnnl = linearLayer(
                weight: b, transposed: transposedB, scale: 1, bias: bias, activation: activation,
                precision: request.precision)
        } else {
            dnnl = nil
        }
    }

    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let a = try requireFloat(inputs.required(0))
        let b = try self.b ?? requireFloat(inputs.required(1))
        guard a.rank >= 1, b.rank >= 1 else { throw RuntimeError("MatMul of scalars") }
        if transposedB, b.rank != 2 { throw RuntimeError("MatMul: a transposed weight must be 2-D, got \(b.shape)") }
        let aShape = a.rank == 1 ? [1, a.shape[0]] : a.shape
        let bShape = b.rank == 1 ? [b.shape[0], 1] : transposedB ? [b.shape[1], b.shape[0]] : b.shape
        let m = aShape[aShape.count - 2], k = aShape[aShape.count - 1]
        let kb = bShape[bShape.count - 2], n = bShape[bShape.count - 1]
        guard k == kb else { throw RuntimeError("MatMul inner sizes differ: \(a.shape) and \(b.shape)") }
        let batch = try broadcastShapes(Array(aShape.dropLast(2)), Array(bShape.dropLast(2)))
        var outShape = batch + [m, n]
        let y = try Tensor.uninitialized(.float32, outShape)
        let py = y.mutableFloats
        func shaped(_ y: Tensor) -> Tensor {
            if a.rank == 1 { outShape.remove(at: outShape.count - 2) }
            if b.rank == 1 { outShape.removeLast() }
            return y.reshaped(outShape)
        }
        if bShape.count == 2 {
            // Every row of A meets the same B.
            let rows = aShape.dropLast().reduce(1, *)
            if let dnnl, b.rank == 2, DNNLMatMul.pays(rows: rows, dnnl),
                try dnnl.run(rows: rows, x: a.floats, y: py, threads: context.threads)
            {
                return [shaped(y)]
            }
            MatrixMultiply.multiply(
                transposeA: false, transposeB: transposedB, m: rows, n: n, k: k,
                a: a.floats, lda: k, b: b.floats, ldb: transposedB ? k : n, beta: 0, c: py, ldc: n,
                threads: context.threads)
        } else {
            let batches = batch.reduce(1, *)
            let aBatch = broadcastStrides(Array(aShape.dropLast(2)), to: batch)
            let bBatch = broadcastStrides(Array(bShape.dropLast(2)), to: batch)
            let parallel = context.threads > 1 && batches >= context.threads
            let pa = a.floats, pb = b.floats
            Parallel.forEach(batches, threads: parallel ? context.threads : 1) { range in
                for index in range {
                    var rest = index, offsetA = 0, offsetB = 0
                    for axis in stride(from: batch.count - 1, through: 0, by: -1) {
                        let i = rest % batch[axis]
                        rest /= batch[axis]
                        offsetA += i * aBatch[axis]
                        offsetB += i * bBatch[axis]
                    }
                    MatrixMultiply.multiply(
                        transposeA: false, transposeB: false, m: m, n: n, k: k,
                        a: pa + offsetA * m * k, lda: k, b: pb + offsetB * k * n, ldb: n,
                        beta: 0, c: py + index * m * n, ldc: n,
                        threads: parallel ? 1 : context.threads)
                }
            }
        }
        let total = y.elementCount
        if let bias {
            let pbias = bias.floats
            Parallel.forEach(total / max(1, n), threads: context.threads, grain: max(1, 16384 / max(1, n))) { rows in
                for r in rows {
                    let row = py + r * n
                    for j in 0..<n { row[j] += pbias[j] }
                    activation?.apply(row, n)
                }
            }
        } else {
            activation?.apply(py, total, threads: context.threads)
        }
        return [shaped(y)]
    }
}

/// The oneDNN matmul for a layer with constant weights `weight` (see `DNNLMatMul`), or nil when its
/// weights are too large to keep a second, reordered copy of: beyond 2 MiB, products are large
/// enough that `dnnl_sgemm`'s repacking is a small share (ViT-B/16's 768 × 768 layers over 1,576
/// rows a thread: 3 % faster through the primitive, for 28 MB more memory), and the model's own
/// copy stays in memory anyway. In bfloat16 every such layer takes the primitive, the only path that
/// multiplies in bfloat16; its copy is half the size of the float32 weights.
private func linearLayer(
    weight: Tensor, transposed: Bool, scale: Float, bias: Tensor?, activation: Activation?,
    precision: ProductPrecision
) -> DNNLMatMul? {
    guard precision.effective == .bfloat16 || weight.elementCount * MemoryLayout<Float>.stride <= 2 << 20 else {
        return nil
    }
    return DNNLMatMul(
        weight: weight, transposed: transposed, scale: scale, bias: bias, activation: activation,
        precision: precision)
}
