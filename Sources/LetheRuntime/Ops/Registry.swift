import LetheCore
import LetheIR

/// Operator types the runtime executes, and how to build each one's kernel.
enum OperatorRegistry {
    static func factory(for node: Node) -> KernelFactory? {
        if node.domain == internalDomain { return internalFactories[node.opType] }
        guard node.domain.isEmpty || node.domain == "ai.onnx" else { return nil }
        return factories[node.opType]
    }

    /// The domain of nodes only the runtime's own rewrites create (never read from a model file,
    /// whose domains the loader keeps as written).
    static let internalDomain = "lethe.runtime.fused"

    private static let internalFactories: [String: KernelFactory] = [
        "OneHotLookup": { try OneHotLookupKernel($0) },
        "ReduceSumOfSquares": { try ReduceKernel($0, op: .ReduceSum, squaresFirst: true) },
        "ReduceMeanOfSquares": { try ReduceKernel($0, op: .ReduceMean, squaresFirst: true) },
        "TransposedGather": { try TransposedGatherKernel($0) },
        "Attention": { try AttentionKernel($0) },
        "Elementwise": { request in
            guard let program = request.elementwise else { throw Unsupported("Elementwise without a program") }
            return FusedElementwiseKernel(program: program)
        }
    ]

    static func isSupported(_ opType: String) -> Bool { factories[opType] != nil }

    /// Ops whose outputs depend only on their inputs, so they may be folded when those are constants.
    static func isFoldable(_ opType: String) -> Bool {
        !["RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"]
            .contains(opType)
    }

    private static let factories: [String: KernelFactory] = {
        var table: [String: KernelFactory] = [
            "Conv": { try ConvKernel($0) },
            "ConvTranspose": { try ConvTransposeKernel($0) },
            "BatchNormalization": { try BatchNormKernel($0) },
            "LayerNormalization": { try LayerNormKernel($0) },
            "Softmax": { try SoftmaxKernel($0) },
            "LogSoftmax": { try SoftmaxKernel($0) },
            "Hardmax": { try SoftmaxKernel($0) },
            "MaxPool": { try BlockedMaxPoolKernel($0) },
            "AveragePool": { try PoolKernel($0) },
            "GlobalAveragePool": { _ in GlobalPoolKernel(isMax: false) },
            "GlobalMaxPool": { _ in GlobalPoolKernel(isMax: true) },
            "Gemm": { try GemmKernel($0) },
            "MatMul": { try MatMulKernel($0) },
            "Einsum": { try EinsumKernel($0) },
            "PRelu": makePRelu,
            "Add": { BlockedAddKernel(ArithmeticKernel(op: .add, activation: $0.activation)) },
            "Sub": { _ in ArithmeticKernel(op: .sub) },
            "Mul": { _ in ArithmeticKernel(op: .mul) },
            "Div": { _ in ArithmeticKernel(op: .div) },
            "Pow": { _ in ArithmeticKernel(op: .pow) },
            "Mod": { request in ArithmeticKernel(op: .mod(fmod: try request.int("fmod", 0) != 0)) },
            "Max": { _ in VariadicKernel(op: .max, mean: false) },
            "Min": { _ in VariadicKernel(op: .min, mean: false) },
            "Sum": { _ in VariadicKernel(op: .add, mean: false) },
            "Mean": { _ in VariadicKernel(op: .add, mean: true) },
            "Equal": { _ in ComparisonKernel(op: .equal) },
            "Less": { _ in ComparisonKernel(op: .less) },
            "Greater": { _ in ComparisonKernel(op: .greater) },
            "LessOrEqual": { _ in ComparisonKernel(op: .lessOrEqual) },
            "GreaterOrEqual": { _ in ComparisonKernel(op: .greaterOrEqual) },
            "And": { _ in ComparisonKernel(op: .and) },
            "Or": { _ in ComparisonKernel(op: .or) },
            "Xor": { _ in ComparisonKernel(op: .xor) },
            "Not": { _ in NotKernel() },
            "Where": { _ in WhereKernel() },
            "Cast": makeCast,
            "CastLike": makeCastLike,
            "ReduceMean": { try ReduceKernel($0) }, "ReduceSum": { try ReduceKernel($0) },
            "ReduceMax": { try ReduceKernel($0) }, "ReduceMin": { try ReduceKernel($0) },
            "ReduceProd": { try ReduceKernel($0) }, "ReduceL1": { try ReduceKernel($0) },
            "ReduceL2": { try ReduceKernel($0) }, "ReduceSumSquare": { try ReduceKernel($0) },
            "ReduceLogSum": { try ReduceKernel($0) }, "ReduceLogSumExp": { try ReduceKernel($0) },
            "ArgMax": { try ArgExtremumKernel($0) },
            "ArgMin": { try ArgExtremumKernel($0) },
            "Concat": { try ConcatKernel($0) },
            "Split": { try SplitKernel($0) },
            "Slice": { try SliceKernel($0) },
            "Gather": { try GatherKernel($0) },
            "GatherElements": { try GatherElementsKernel($0) },
            "GatherND": { try GatherNDKernel($0) },
            "ScatterND": { try ScatterNDKernel($0) },
            "Reshape": { try ReshapeKernel($0) },
            "Flatten": { try FlattenKernel($0) },
            "Transpose": { try TransposeKernel($0) },
            "Squeeze": { try SqueezeKernel($0) },
            "Unsqueeze": { try UnsqueezeKernel($0) },
            "Expand": { _ in ExpandKernel() },
            "Tile": { _ in TileKernel() },
            "Pad": { try PadKernel($0) },
            "Shape": { try ShapeKernel($0) },
            "Size": { try ShapeKernel($0) },
            "ConstantOfShape": { try ConstantOfShapeKernel($0) },
            "Range": { _ in RangeKernel() },
            "Constant": makeConstant,
            "Identity": { _ in IdentityKernel(maskOutput: false) },
            "Dropout": { request in
                if request.hasInput(2), let training = request.constant(2), training.int64Values().first != 0 {
                    throw Unsupported("Dropout in training mode")
                }
                return IdentityKernel(maskOutput: request.node.outputs.count > 1 && !request.node.outputs[1].isEmpty)
            },
            "Resize": { try ResizeKernel($0) },
            "Upsample": { try ResizeKernel($0) }
        ]
        for name in Activation.opTypes { table[name] = makeActivation }
        for op in UnaryOp.allCases {
            table[op.rawValue] = { request in
                UnaryKernel(
                    op: op, detectPositive: try request.int("detect_positive", 1) != 0,
                    detectNegative: try request.int("detect_negative", 1) != 0)
            }
        }
        return table
    }()
}
