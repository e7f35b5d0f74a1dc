import LetheCore

/// Tensor data bound for the external data file, at 64-byte aligned offsets so that readers can
/// map it in place.
struct ExternalSink {
    enum Source {
        case tensor(Tensor)
        case file(MappedFile, Range<Int>)

        func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
            switch self {
            case .tensor(let t): try t.withUnsafeBytes(body)
            case .file(let f, let range): try body(UnsafeRawBufferPointer(rebasing: f.bytes[range]))
            }
        }

        /// Whether the bytes lie in a mapped file, whose pages can be dropped once written.
        var isMapped: Bool {
            switch self {
            case .tensor(let t): t.storage.mappedFile != nil
            case .file: true
            }
        }

        var count: Int {
            switch self {
            case .tensor(let t): t.byteCount
            case .file(_, let range): range.count
            }
        }
    }

    static let alignment = 64
    private(set) var entries: [(offset: Int, source: Source)] = []
    private(set) var size = 0

    /// Reserves space for `source`; returns its offset.
    mutating func append(_ source: Source) -> Int {
        let offset = (size + ExternalSink.alignment - 1) / ExternalSink.alignment * ExternalSink.alignment
        entries.append((offset, source))
        size = offset + source.count
        return offset
    }

    func write(to writer: AtomicFileWriter) throws {
        let zeros = [UInt8](repeating: 0, count: ExternalSink.alignment)
        for (offset, source) in entries {
            let pad = offset - writer.bytesWritten
            if pad > 0 { try zeros.withUnsafeBytes { try writer.write(UnsafeRawBufferPointer(rebasing: $0[0..<pad])) } }
            // Piece by piece, dropping mapped pages behind: a multi-GB data file costs one piece of memory.
            try source.withBytes { try TensorStreamer.write($0, to: writer, release: source.isMapped) }
        }
    }
}
