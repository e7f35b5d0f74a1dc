import LetheCore
import LetheIR
import LetheNumPy

/// What `lethe convert` was asked to do.
public struct ConversionRequest: Sendable {
    public var input: String
    public var output: String
    /// An ONNX file whose graph receives the weights when writing ONNX from a weights-only file.
    public var graphTemplate: String?
    /// Converts every floating-point tensor to this dtype.
    public var dtype: DType?
    /// Allows `output` to be `input`, replacing it only once the new file is complete.
    public var inPlace: Bool

    public init(input: String, output: String, graphTemplate: String? = nil, dtype: DType? = nil, inPlace: Bool = false)
    {
        self.input = input
        self.output = output
        self.graphTemplate = graphTemplate
        self.dtype = dtype
        self.inPlace = inPlace
    }
}

/// Rewrites or converts checkpoints between formats.
public enum CheckpointConverter {
    /// Performs `request`, writing the output atomically. Returns the output's format.
    @discardableResult
    public static func convert(_ request: ConversionRequest) throws -> CheckpointFormat {
        guard let outputFormat = CheckpointFormat.fromExtension(request.output) else {
            throw UsageError(
                "cannot tell the output format of '\(request.output)': use .onnx, .safetensors, .npz or .npy")
        }
        let backup = try OutputPath.prepare(
            request.output, inputs: [request.input, request.graphTemplate].compactMap { $0 },
            inPlace: request.inPlace)
        defer { backup?.release() }
        if let dtype = request.dtype, !dtype.isFloatingPoint {
            throw UsageError(
                "\(Setting.dtype) takes a floating-point type (f32, f16, bf16, f64), not \(dtype.rawValue)")
        }
        let source = try Checkpoint.open(request.input)
        var model = source.model
        if let dtype = request.dtype { model.graph = model.graph.convertingFloatingPoint(to: dtype) }
        if outputFormat == .onnx || outputFormat == .safetensors,
            let text = model.graph.initializers.first(where: { $0.tensor.dtype.isCharacter })
        {
            let kind = text.tensor.characterArray.map { $0.typeName(text.tensor.dtype) } ?? text.tensor.dtype.rawValue
            throw FileError(
                path: request.input,
                underlying: UsageError(
                    "'\(text.name)' is a NumPy string array (\(kind)); \(outputFormat.rawValue) holds only numbers (write .npz or .npy)"
                ))
        }

        if outputFormat == .onnx {
            if source.format == .onnx {
                if let dtype = request.dtype,
                    source.model.graph.initializers.contains(where: {
                        $0.tensor.dtype.isFloatingPoint && $0.tensor.dtype != dtype
                    })
                {
                    throw UsageError(
                        "\(Setting.dtype) on an ONNX graph would change the types its operators were exported with; convert the weights to safetensors or npz instead"
                    )
                }
                try source.write(model, to: request.output)
                return outputFormat
            }
            guard let templatePath = request.graphTemplate else {
                throw UsageError(
                    "writing ONNX from \(source.format.rawValue) needs \(Setting.graph) TEMPLATE.onnx (the model's graph)"
                )
            }
            let template = try Checkpoint.open(templatePath)
            guard template.format == .onnx else { throw UsageError("\(Setting.graph) must be an ONNX file") }
            let filled = try FileError.wrapping(request.input) {
                try GraphTemplate(model: template.model).filled(with: model.graph.initializers, convertDTypes: true)
            }
            try template.write(filled, to: request.output)
            return outputFormat
        }

        if outputFormat == source.format {
            try source.write(model, to: request.output)
            return outputFormat
        }
        var weights = model
        weights.graph = Graph(name: model.graph.name, initializers: model.graph.initializers)
        if outputFormat == .npz || outputFormat == .npy {
            do { try NumPyDTypes.check(weights.graph.initializers) } catch {
                throw FileError(path: request.output, underlying: error)
            }
        }
        try CheckpointWriter.write(weights, as: outputFormat, to: request.output)
        return outputFormat
    }
}

extension Graph {
    /// This graph with every floating-point initializer (and Constant-node tensor) in `dtype`.
    public func convertingFloatingPoint(to dtype: DType) -> Graph {
        var graph = self
        for index in graph.initializers.indices {
            graph.initializers[index].tensor = graph.initializers[index].tensor.convertedFloatingPoint(to: dtype)
        }
        return graph
    }
}
