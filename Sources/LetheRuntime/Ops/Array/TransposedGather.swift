import LetheCore

/// `Gather(Transpose(x, perm), index, axis 0)` for one scalar index, as one strided copy from x
/// (`WorkingGraph.fuseTransposeIntoGathers`): a ViT's q/k/v split transposes the whole qkv tensor
/// to [3, B, heads, tokens, d] only to copy each third out of it again.
struct TransposedGatherKernel: Kernel {
    let permutation: [Int]

    init(_ request: KernelRequest) throws {
        guard let permutation = try request.ints("perm") else { throw Unsupported("TransposedGather needs perm") }
        self.permutation = permutation
    }

    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0), indexTensor = try inputs.required(1)
        guard permutation.count == x.rank, Set(permutation) == Set(0..<x.rank), x.rank >= 1 else {
            throw RuntimeError("permutation \(permutation) does not fit rank \(x.rank)")
        }
        guard indexTensor.rank == 0, let index = try indexTensor.intValues().first else {
            throw RuntimeError("TransposedGather needs one scalar index, got \(indexTensor.shape)")
        }
        let own = contiguousStrides(x.shape)
        let shape = permutation.map { x.shape[$0] }, strides = permutation.map { own[$0] }
        let i = index < 0 ? index + shape[0] : index
        guard i >= 0, i < shape[0] else {
            throw RuntimeError("Gather index \(index) is out of range for size \(shape[0])")
        }
        return [
            try gatherStrided(
                x, shape: Array(shape.dropFirst()), strides: Array(strides.dropFirst()), offset: i * strides[0],
                threads: context.threads)
        ]
    }
}
