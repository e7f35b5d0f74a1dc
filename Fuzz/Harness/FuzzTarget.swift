import Foundation
import LetheCore
import LetheImages
import LetheIR
import LetheNumPy
import LetheONNX
import LetheRuntime
import LetheSafetensors

/// One fuzzed entry point of Lethe: bytes in, a typed error or a consistent result out.
///
/// The libFuzzer executables under `Fuzz/` call `run` once per input; the regression tests call
/// it on every committed crash input, without sanitizers. Violated invariants stop the process
/// with `fatalError`, so libFuzzer records the input that broke them.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// `ONNXFormat.read(bytes:)` (and the standalone `readTensor`), then an unchanged write-back.
    case onnx
    /// `SafetensorsFormat.read(bytes:)`, header and body, then a write-back read again.
    case safetensors
    /// `NPYFormat.parse`, then an encode/parse round trip.
    case npy
    /// `NPZFormat.read(path:)` over a per-process file in shared memory.
    case npz
    /// An ONNX model read from the bytes, planned and run on small inputs of its declared shapes.
    case graph
    /// `ImageDecoder.decode` (PNG through libpng, JPEG through libjpeg-turbo), then channel
    /// conversion, resize and centre crop of what decoded.
    case image

    /// What happened to one input.
    public enum Outcome: Sendable {
        /// Read (and, for `graph`, ran) without error.
        case accepted
        /// Refused with this error.
        case rejected(any Error)
        /// Readable, but its declared inputs are too large to feed (only `graph`).
        case skipped(String)
    }

    /// Caps small enough that a fuzzed declaration cannot make a reader allocate gigabytes,
    /// large enough for every seed.
    public static let limits: Limits = {
        var limits = Limits(maxTensorBytes: 64 << 20, maxElements: 16 << 20)
        limits.maxSafetensorsHeader = 1 << 20
        return limits
    }()

    /// Runs one input. Never throws: a refusal is an outcome, a broken invariant a trap.
    public func run(_ bytes: UnsafeRawBufferPointer) -> Outcome {
        do {
            switch self {
            case .onnx: try FuzzTarget.readONNX(bytes)
            case .safetensors: try FuzzTarget.readSafetensors(bytes)
            case .npy: try FuzzTarget.parseNPY(bytes)
            case .npz: try FuzzTarget.readNPZ(bytes)
            case .graph: if let reason = try FuzzTarget.runGraph(bytes) { return .skipped(reason) }
            case .image: try FuzzTarget.decodeImage(bytes)
            }
            return .accepted
        } catch {
            return .rejected(error)
        }
    }

    /// The libFuzzer entry: runs the input and traps on an error that is not a `LetheError`,
    /// since every refusal of file data must say what is wrong in Lethe's own terms.
    public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
        let bytes = UnsafeRawBufferPointer(start: size > 0 ? data : nil, count: size)
        if case .rejected(let error) = run(bytes), !(error is any LetheError) {
            fatalError("\(rawValue): untyped error \(type(of: error)): \(error)")
        }
        return 0
    }

    // MARK: - Readers

    static func readONNX(_ bytes: UnsafeRawBufferPointer) throws {
        // A serialized TensorProto is a prefix-free subset of the same wire format: cheap extra coverage.
        if let (_, tensor) = try? ONNXFormat.readTensor(bytes: bytes, limits: limits) {
            checkLayout(tensor, "readTensor")
        }
        let file = try ONNXFormat.read(bytes: bytes, path: "fuzz.onnx", baseFolder: nil, limits: limits)
        for initializer in file.model.graph.initializers { checkLayout(initializer.tensor, initializer.name) }
        let path = scratchPath("onnx")
        defer { unlink(path) }
        try ONNXFormat.write(file.model, to: path, original: file)
        let written = try readFile(path)
        guard written.elementsEqual(bytes) else {
            fatalError(
                "onnx: an unchanged model was not written back byte for byte (\(bytes.count) → \(written.count) bytes)")
        }
    }

    static func readSafetensors(_ bytes: UnsafeRawBufferPointer) throws {
        let file = try SafetensorsFormat.read(bytes: bytes, path: "fuzz.safetensors", limits: limits)
        for initializer in file.model.graph.initializers { checkLayout(initializer.tensor, initializer.name) }
        let path = scratchPath("safetensors")
        defer { unlink(path) }
        try SafetensorsFormat.write(file.model, to: path, original: file)
        let again = try SafetensorsFormat.read(path: path, limits: limits)
        checkSameTensors(file.model.graph.initializers, again.model.graph.initializers, "safetensors")
    }

    static func parseNPY(_ bytes: UnsafeRawBufferPointer) throws {
        let tensor = try NPYFormat.parse(bytes, name: "fuzz.npy", limits: limits)
        checkLayout(tensor, "fuzz.npy")
        let encoded = try NPYFormat.encode(tensor)
        let again = try encoded.withUnsafeBytes { try NPYFormat.parse($0, name: "re-encoded", limits: limits) }
        checkSameTensors(
            [Initializer(name: "array", tensor: tensor)], [Initializer(name: "array", tensor: again)], "npy")
    }

    static func readNPZ(_ bytes: UnsafeRawBufferPointer) throws {
        let path = scratchPath("npz")
        defer { unlink(path) }
        try writeFile(bytes, to: path)
        let file = try NPZFormat.read(path: path, limits: limits)
        for initializer in file.model.graph.initializers { checkLayout(initializer.tensor, initializer.name) }
        let copy = scratchPath("copy.npz")
        defer { unlink(copy) }
        try NPZFormat.write(file.model, to: copy, original: file)
        let again = try NPZFormat.read(path: copy, limits: limits)
        checkSameTensors(file.model.graph.initializers, again.model.graph.initializers, "npz")
    }

    // MARK: - Images

    /// Most pixels a fuzzed image may declare (the reader's own cap is 100 megapixels, more than
    /// libFuzzer's allocation limit lets one input take).
    static let maxImagePixels = 1 << 20

    static func decodeImage(_ bytes: UnsafeRawBufferPointer) throws {
        let image = try ImageDecoder.decode(bytes, maxPixels: maxImagePixels)
        func check(_ image: PixelImage, _ what: String) {
            guard image.width > 0, image.height > 0, (1...4).contains(image.channels),
                image.samples.count == image.width * image.height * image.channels,
                image.samples.allSatisfy({ $0 >= 0 && $0 <= 255 })
            else {
                fatalError(
                    "image \(what): \(image.width)x\(image.height)x\(image.channels), \(image.samples.count) samples")
            }
        }
        check(image, "decoded")
        for channels in [1, 3] {
            let converted = ChannelConversion.convert(image, to: channels)
            check(converted, "converted")
            let size = Resize.shorterSide(to: 7, width: converted.width, height: converted.height)
            guard size.width * size.height <= maxImagePixels else { continue }
            check(CenterCrop.crop(Resize.resize(converted, width: size.width, height: size.height), size: 5), "resized")
        }
    }

    // MARK: - Graph

    /// Most elements fed to one input; larger declared inputs are skipped, not run.
    static let maxInputElements = 4096
    /// What a free (symbolic or unknown) dimension becomes.
    static let freeDimension = 2

    /// Reads, plans and runs the model; returns why it was skipped, if it was.
    static func runGraph(_ bytes: UnsafeRawBufferPointer) throws -> String? {
        let file = try ONNXFormat.read(bytes: bytes, path: "fuzz.onnx", baseFolder: nil, limits: limits)
        let graph = file.model.graph
        var feeds: [String: Tensor] = [:]
        for info in graph.runtimeInputs {
            let shape = (info.shape ?? [.unknown]).map { $0.fixedValue ?? freeDimension }
            var elements = 1
            for dimension in shape {
                guard dimension >= 0 else { return "input '\(info.name)' declares a negative dimension" }
                let (product, overflow) = elements.multipliedReportingOverflow(by: dimension)
                guard !overflow, product <= maxInputElements else { return "input '\(info.name)' is too large to feed" }
                elements = product
            }
            feeds[info.name] = sampleTensor(info.dtype ?? .float32, shape)
        }
        let session = try InferenceSession(model: file.model, options: SessionOptions(threads: 1))
        let outputs = try session.run(feeds)
        for (name, tensor) in outputs { checkLayout(tensor, "output \(name)") }
        return nil
    }

    /// Small, varied values: floats in [-1.5, 1.5], integers 0...2 (valid indices of most small axes).
    static func sampleTensor(_ dtype: DType, _ shape: [Int]) -> Tensor {
        let count = Tensor.elementCount(shape)
        func floats() -> [Float] { (0..<count).map { Float($0 % 7 - 3) * 0.5 } }
        func integers<T: BinaryInteger>(_: T.Type) -> [T] { (0..<count).map { T($0 % 3) } }
        switch dtype {
        case .float32: return Tensor(shape: shape, values: floats())
        case .float64: return Tensor(shape: shape, values: floats().map(Double.init))
        case .float16: return Tensor(shape: shape, values: floats().map(Float16.init))
        case .int8: return Tensor(shape: shape, values: integers(Int8.self))
        case .int16: return Tensor(shape: shape, values: integers(Int16.self))
        case .int32: return Tensor(shape: shape, values: integers(Int32.self))
        case .int64: return Tensor(shape: shape, values: integers(Int64.self))
        case .uint8: return Tensor(shape: shape, values: integers(UInt8.self))
        case .uint16: return Tensor(shape: shape, values: integers(UInt16.self))
        case .uint32: return Tensor(shape: shape, values: integers(UInt32.self))
        case .uint64: return Tensor(shape: shape, values: integers(UInt64.self))
        case .bool: return Tensor(shape: shape, values: (0..<count).map { $0 % 2 == 1 })
        default: return Tensor(zeros: dtype, shape: shape)
        }
    }

    // MARK: - Invariants

    /// A tensor handed out must own exactly the bytes its dtype and shape say.
    static func checkLayout(_ tensor: Tensor, _ what: String) {
        guard tensor.shape.allSatisfy({ $0 >= 0 }),
            let expected = Tensor.byteCount(dtype: tensor.dtype, shape: tensor.shape),
            expected == tensor.byteCount
        else {
            fatalError("\(what): \(tensor.dtype) \(tensor.shape) holds \(tensor.byteCount) bytes")
        }
    }

    static func checkSameTensors(_ a: [Initializer], _ b: [Initializer], _ format: String) {
        guard a.count == b.count else { fatalError("\(format): \(a.count) tensors read, \(b.count) after a rewrite") }
        for (x, y) in zip(a, b) {
            guard x.name == y.name, x.tensor.dtype == y.tensor.dtype, x.tensor.shape == y.tensor.shape,
                x.tensor.isBitwiseEqual(to: y.tensor)
            else {
                fatalError("\(format): tensor '\(x.name)' changed in a rewrite (\(x.tensor) → '\(y.name)' \(y.tensor))")
            }
        }
    }

    // MARK: - Scratch files

    /// A path private to this process in shared memory (a tmpfs, so no disk traffic per input).
    static func scratchPath(_ suffix: String) -> String {
        let folder = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : NSTemporaryDirectory()
        return "\(folder)/lethe-fuzz-\(getpid()).\(suffix)"
    }

    /// The file's bytes (Foundation's `Data(contentsOf:)` leaks a buffer on empty files, which
    /// LeakSanitizer would report as a crash of ours).
    static func readFile(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw FileError(path: path, underlying: SystemError("open", code: errno)) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress!, $0.count) }
            guard n >= 0 else { throw FileError(path: path, underlying: SystemError("read", code: errno)) }
            if n == 0 { return bytes }
            bytes += chunk[..<n]
        }
    }

    static func writeFile(_ bytes: UnsafeRawBufferPointer, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw FileError(path: path, underlying: SystemError("open", code: errno)) }
        defer { close(fd) }
        var done = 0
        while done < bytes.count {
            let n = Foundation.write(fd, bytes.baseAddress! + done, bytes.count - done)
            guard n > 0 else { throw FileError(path: path, underlying: SystemError("write", code: errno)) }
            done += n
        }
    }
}
