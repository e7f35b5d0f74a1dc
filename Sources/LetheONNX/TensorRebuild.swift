import Foundation
import LetheCore
import LetheIR

/// Tensor messages: the original where the data is unchanged and stays where it was, otherwise
/// rebuilt with the data inline (raw or typed, as the original had it) or in the data file.
extension ProtoRebuild {
    /// An original tensor the IR does not represent, with its data restored.
    mutating func keptTensor(_ proto: Onnx_TensorProto, path: ProtoPath) throws -> Onnx_TensorProto {
        var copy = proto
        if let source, let range = source.rawData[path] {
            copy.rawData = dataReferring(to: source.bytes.bytes, range)
        }
        if let slice = source?.carriedExternal[path] {
            setExternal(&copy, offset: sink.append(.file(slice.file, slice.range)), length: slice.range.count)
        }
        return copy
    }

    /// The message for `tensor`, placed by the threshold (initializers) or where the original had it.
    mutating func tensorProto(
        _ tensor: Tensor, name: String, original: (proto: Onnx_TensorProto, path: ProtoPath)?,
        isInitializer: Bool
    ) throws -> Onnx_TensorProto {
        let record = original.flatMap { source?.records[$0.path] }
        var wasExternal = false
        var wasTyped = false
        if let record {
            switch record.placement {
            case .external: wasExternal = true
            case .typed: wasTyped = true
            case .raw: break
            }
        }
        let external: Bool
        if let threshold, isInitializer {
            external = tensor.byteCount >= threshold
        } else {
            external = wasExternal
        }
        let unchanged =
            record.map {
                StructuralEquality.sameLayout(tensor, $0.tensor) && StructuralEquality.unchanged(tensor, $0.tensor)
            } ?? false

        if unchanged, external == wasExternal, var proto = original?.proto {
            if external {
                setExternal(&proto, offset: sink.append(.tensor(tensor)), length: tensor.byteCount)
            } else if case .raw(let range)? = record?.placement, let source {
                proto.rawData = dataReferring(to: source.bytes.bytes, range)
            }
            return proto
        }

        var proto = original?.proto ?? Onnx_TensorProto()
        if original == nil, !name.isEmpty { proto.name = name }
        proto.clearSegment()
        proto.clearRawData()
        proto.floatData = []
        proto.int32Data = []
        proto.int64Data = []
        proto.doubleData = []
        proto.uint64Data = []
        proto.stringData = []
        proto.dims = tensor.shape.map { Int64($0) }
        proto.dataType = ONNXDataType.code(for: tensor.dtype)
        if external {
            proto.externalData.removeAll { $0.key == "checksum" }
            setExternal(&proto, offset: sink.append(.tensor(tensor)), length: tensor.byteCount)
        } else {
            proto.clearDataLocation()
            proto.externalData = []
            if wasTyped {
                TypedData.store(tensor, in: &proto)
            } else {
                keepAlive.append(tensor)
                proto.rawData = tensor.withUnsafeBytes { dataReferring(to: $0, 0..<$0.count) }
            }
        }
        return proto
    }

    /// Points `proto` at `length` bytes at `offset` of the data file, keeping other external-data keys.
    func setExternal(_ proto: inout Onnx_TensorProto, offset: Int, length: Int) {
        proto.dataLocation = .external
        proto.clearRawData()
        let values = [("location", dataLocation), ("offset", String(offset)), ("length", String(length))]
        for (key, value) in values {
            if let index = proto.externalData.firstIndex(where: { $0.key == key }) {
                proto.externalData[index].value = value
            } else {
                proto.externalData.append(entry(key: key, value: value))
            }
        }
    }

    /// A `Data` over bytes that outlive it (a mapped file or a kept tensor), without copying.
    func dataReferring(to bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Data {
        guard !range.isEmpty, let base = bytes.baseAddress else { return Data() }
        return Data(
            bytesNoCopy: UnsafeMutableRawPointer(mutating: base + range.lowerBound), count: range.count,
            deallocator: .none)
    }
}

/// A string map entry (metadata, external-data keys).
func entry(key: String, value: String) -> Onnx_StringStringEntryProto {
    var e = Onnx_StringStringEntryProto()
    e.key = key
    e.value = value
    return e
}
