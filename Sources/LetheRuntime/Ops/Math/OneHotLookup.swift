import LetheCore

/// The fused form of `MatMul(Cast(Equal(Expand(x, shape), classes), float), W)` and the
/// elementwise nodes folded after it (`WorkingGraph.fuseOneHotLookups`): each output row is the
/// table row of its index, the last table row for an index outside 0..<D.
///
/// Inputs: x (integer indices), the Expand's shape, the table [1…, D + 1, n] (a constant), the
/// classes constant (only its shape and dtype matter here: the pass checked it is 0..<D).
struct OneHotLookupKernel: Kernel {
    let table: Tensor
    let classesShape: [Int]
    let indexType: DType

    init(_ request: KernelRequest) throws {
        guard let table = request.constant(2), table.dtype == .float32, table.rank >= 2,
            let classes = request.constant(3)
        else { throw Unsupported("OneHotLookup needs a constant float table and classes") }
        self.table = table
        classesShape = classes.shape
        indexType = classes.dtype
    }

    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        var x = try inputs.required(0)
        guard x.dtype == indexType else { throw RuntimeError("comparing \(x.dtype) with \(indexType)") }
        let expanded = try broadcastShapes(x.shape, inputs.required(1).intValues())
        let oneHot = try broadcastShapes(expanded, classesShape)
        let classes = table.shape[table.rank - 2] - 1, n = table.shape[table.rank - 1]
        // A last axis of x longer than 1 would compare each element with one class, not make a one-hot.
        guard expanded.last == 1, oneHot.last == classes else {
            throw RuntimeError("OneHotLookup: \(x.shape) expanded to \(expanded) is not a column of indices")
        }
        if x.elementCount != Tensor.elementCount(expanded) {
            x = try ExpandKernel().run([x, Tensor.int64(expanded)], context)[0]
        }
        let outputShape = Array(oneHot.dropLast()) + [n]
        let y = try Tensor.uninitialized(.float32, outputShape)
        let rows = x.elementCount
        let source = table.floats, target = y.mutableFloats
        func copyRows<T: BinaryInteger>(_ type: T.Type) {
            let indices = x.pointer(T.self)
            Parallel.forEach(rows, threads: context.threads, grain: max(1, 16384 / max(1, n))) { range in
                for r in range {
                    let v = indices[r]
                    let row = v >= 0 && v < classes ? Int(v) : classes
                    (target + r * n).update(from: source + row * n, count: n)
                }
            }
        }
        switch indexType {
        case .int32: copyRows(Int32.self)
        case .int64: copyRows(Int64.self)
        case .int16: copyRows(Int16.self)
        case .int8: copyRows(Int8.self)
        case .uint8: copyRows(UInt8.self)
        case .uint16: copyRows(UInt16.self)
        case .uint32: copyRows(UInt32.self)
        case .uint64: copyRows(UInt64.self)
        default: throw RuntimeError("OneHotLookup of \(indexType) indices")
        }
        return [y]
    }
}
