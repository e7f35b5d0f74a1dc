import LetheCore

/// A tree of Add/Sub/Mul/Div nodes folded into one (`WorkingGraph.fuseElementwiseChains`).
struct ElementwiseProgram: Sendable, Equatable {
    enum Operand: Sendable, Equatable {
        /// The kernel's input `k`.
        case input(Int)
        /// The result of instruction `k` (an earlier one).
        case result(Int)
    }
    struct Instruction: Sendable, Equatable {
        var op: Op
        var lhs: Operand
        var rhs: Operand
    }
    enum Op: Sendable, Equatable {
        case add, sub, mul, div

        var arithmetic: ArithmeticOp {
            switch self {
            case .add: .add
            case .sub: .sub
            case .mul: .mul
            case .div: .div
            }
        }
    }

    /// In evaluation order; the last one is the node's output.
    var instructions: [Instruction]
}

/// Runs an `ElementwiseProgram` in one pass: each row of the output is computed in blocks of 256
/// floats, every instruction reading its operands from the inputs or from the block results of
/// earlier ones, so no intermediate tensor is written to memory. Each element goes through the
/// same float operations as in the separate nodes, so the results are identical.
///
/// Inputs that are not all float32, or an intermediate smaller than the output (which the fused
/// loop would recompute for every output element), run the instructions one by one instead, as
/// the separate nodes did.
struct FusedElementwiseKernel: Kernel {
    let program: ElementwiseProgram

    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let leaves = try inputs.indices.map { try inputs.required($0) }
        var shapes: [[Int]] = []
        func shape(_ operand: ElementwiseProgram.Operand) -> [Int] {
            switch operand {
            case .input(let k): leaves[k].shape
            case .result(let k): shapes[k]
            }
        }
        for instruction in program.instructions {
            shapes.append(try broadcastShapes(shape(instruction.lhs), shape(instruction.rhs)))
        }
        let outputShape = shapes.last ?? []
        guard leaves.allSatisfy({ $0.dtype == .float32 }), shapes.allSatisfy({ $0 == outputShape }) else {
            return [try stepByStep(leaves, context)]
        }
        let out = try Tensor.uninitialized(.float32, outputShape)
        let plan = BroadcastPlan(leaves.map(\.shape), output: outputShape)
        let pointers = leaves.map(\.floats), target = out.mutableFloats
        let instructions = program.instructions
        let block = 256
        plan.forEachRow(threads: context.threads) { offsets, inner, output, count in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: block * instructions.count) { scratch in
                let results = scratch.baseAddress!
                var start = 0
                while start < count {
                    let n = Swift.min(block, count - start)
                    func operand(_ o: ElementwiseProgram.Operand) -> (UnsafePointer<Float>, Int) {
                        switch o {
                        case .input(let k): (pointers[k] + offsets[k] + start * inner[k], inner[k])
                        case .result(let k): (UnsafePointer(results + k * block), 1)
                        }
                    }
                    for (k, instruction) in instructions.enumerated() {
                        let (x, sx) = operand(instruction.lhs), (y, sy) = operand(instruction.rhs)
                        let destination = k == instructions.count - 1 ? target + output + start : results + k * block
                        switch instruction.op {
                        case .add: binaryRow(x, sx, y, sy, destination, n, +)
                        case .sub: binaryRow(x, sx, y, sy, destination, n, -)
                        case .mul: binaryRow(x, sx, y, sy, destination, n, *)
                        case .div: binaryRow(x, sx, y, sy, destination, n, /)
                        }
                    }
                    start += n
                }
            }
        }
        return [out]
    }

    /// The instructions as the separate nodes ran them, one tensor each.
    private func stepByStep(_ leaves: [Tensor], _ context: ExecutionContext) throws -> Tensor {
        var results: [Tensor] = []
        func value(_ operand: ElementwiseProgram.Operand) -> Tensor {
            switch operand {
            case .input(let k): leaves[k]
            case .result(let k): results[k]
            }
        }
        for instruction in program.instructions {
            results.append(try instruction.op.arithmetic.apply(value(instruction.lhs), value(instruction.rhs), context))
        }
        guard let last = results.last else { throw RuntimeError("empty elementwise program") }
        return last
    }
}
