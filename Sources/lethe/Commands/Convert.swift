import ArgumentParser
import LetheCore
import LetheFormats

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Rewrite or convert a checkpoint; the output format follows OUT's extension.",
        discussion: """
            ONNX → safetensors/npz exports the initializers by name. safetensors/npz → ONNX needs \
            --graph with the model's ONNX graph; its initializers are replaced by name. A bare .npy \
            is a checkpoint of one array, which NumPy stores without a name: it is named after the \
            file without .npy (fc.bias.npy → fc.bias); writing .npy needs exactly one tensor. NumPy string \
            arrays (|S…, <U…) in .npz/.npy are carried byte for byte; safetensors and ONNX refuse them.
            """)

    @Argument(help: "The checkpoint to read.")
    var input: String

    @Argument(help: "The file to write (.onnx, .safetensors, .npz or .npy).")
    var output: String

    @Option(help: "ONNX file whose graph receives the weights when writing ONNX from a weights-only file.")
    var graph: String?

    @Option(help: "Convert floating-point tensors to f32, f16 or bf16.", transform: parseDType)
    var dtype: DType?

    @Flag(help: "Allow OUT to be IN: the file is replaced only once the new one is complete.")
    var inPlace = false

    func run() throws {
        let format = try CheckpointConverter.convert(
            ConversionRequest(
                input: input, output: output, graphTemplate: graph,
                dtype: dtype, inPlace: inPlace))
        Terminal.note("wrote \(output) (\(format.rawValue))")
    }
}

func parseDType(_ text: String) throws -> DType {
    guard let dtype = DType(userName: text) else {
        throw ValidationError("unknown dtype '\(text)' (use f32, f16, bf16 or f64)")
    }
    return dtype
}
