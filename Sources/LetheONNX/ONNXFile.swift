import LetheCore
import LetheIR

/// An ONNX model as read from disk: its IR, plus everything needed to write it back with only
/// Lethe's changes.
public struct ONNXFile: Sendable {
    /// The model file this was read from.
    public let path: String
    /// The model in Lethe's IR. Edit it and pass this `ONNXFile` as `original` to
    /// `ONNXFormat.write` to patch the file.
    public var model: Model
    /// Initializers (by name, main graph and subgraphs) whose element type Lethe cannot
    /// represent — strings, 4- and 2-bit kinds, float8e8m0. They are absent from `model` and
    /// written back unchanged.
    public let carriedInitializers: [String]
    let source: ONNXSource
}

/// Bytes behind a file: a read-only map, or a private copy for `read(bytes:)`.
enum SourceBytes: @unchecked Sendable {
    case mapped(MappedFile)
    case owned(TensorStorage)

    var bytes: UnsafeRawBufferPointer {
        switch self {
        case .mapped(let file): file.bytes
        case .owned(let storage): storage.bytes
        }
    }

    /// A tensor storage over `range`: a view of a mapped file wherever protobuf placed `raw_data`
    /// (element readers align it themselves, `Tensor.aligned()`), a copy of owned bytes.
    func storage(_ range: Range<Int>, dtype: DType) -> TensorStorage {
        switch self {
        case .mapped(let file):
            return TensorStorage(file: file, range: range)
        case .owned(let owner):
            return copiedStorage(owner.bytes, range)
        }
    }
}

func copiedStorage(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> TensorStorage {
    let storage = TensorStorage(uninitializedByteCount: range.count)
    if !range.isEmpty {
        storage.mutableBytes.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[range]))
    }
    return storage
}

/// Where a tensor's data lived in the original files.
enum TensorPlacement: Sendable {
    /// `raw_data` payload in the model file.
    case raw(Range<Int>)
    /// External data.
    case external(ExternalSlice)
    /// Typed fields; `payload` when they form one packed record that may be overwritten in place.
    case typed(TypedPayload?)
}

/// A range of an external data file, and the location the model wrote for it.
struct ExternalSlice: Sendable {
    let location: String
    let file: MappedFile
    let range: Range<Int>
}

/// One graph tensor as it was read.
struct TensorRecord: Sendable {
    let placement: TensorPlacement
    let tensor: Tensor
}

/// The parsed original, shared by every copy of an `ONNXFile`.
final class ONNXSource: @unchecked Sendable {
    let bytes: SourceBytes
    /// The folder external data locations are relative to; nil when unknown.
    let baseFolder: String?
    /// The decoded model; `raw_data` of graph tensors is empty here (see `WireScan.stripped`).
    let proto: Onnx_ModelProto
    /// The IR exactly as read, to tell what the caller changed.
    let model: Model
    let records: [ProtoPath: TensorRecord]
    /// `raw_data` payload ranges of every graph tensor, including carried ones with no record.
    let rawData: [ProtoPath: Range<Int>]
    /// For each graph (by path), the proto index of each IR initializer.
    let initializerIndices: [ProtoPath: [Int]]
    /// External data of carried tensors (no `TensorRecord`), so that rewrites keep it.
    let carriedExternal: [ProtoPath: ExternalSlice]
    /// External data files by resolved path.
    let externalFiles: [String: MappedFile]

    init(
        bytes: SourceBytes, baseFolder: String?, proto: Onnx_ModelProto, model: Model,
        records: [ProtoPath: TensorRecord], rawData: [ProtoPath: Range<Int>],
        carriedExternal: [ProtoPath: ExternalSlice], initializerIndices: [ProtoPath: [Int]],
        externalFiles: [String: MappedFile]
    ) {
        self.bytes = bytes
        self.baseFolder = baseFolder
        self.proto = proto
        self.model = model
        self.records = records
        self.rawData = rawData
        self.carriedExternal = carriedExternal
        self.initializerIndices = initializerIndices
        self.externalFiles = externalFiles
    }
}
