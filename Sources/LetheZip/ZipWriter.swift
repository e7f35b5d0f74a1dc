#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import LetheCore

/// Writes a zip archive the way Python's `zipfile` does for `np.savez` (ZIP64 extra field in
/// every local header, DOS date 1980-01-01, mode 0600, ZIP64 end records only when needed),
/// streaming each member's bytes and patching its local header once sizes and CRC are known.
public final class ZipWriter {
    private let out: AtomicFileWriter
    private var central: [UInt8] = []
    private var count = 0
    static let zip64Limit = (1 << 31) - 1

    /// A writer appending members to `out` (offsets in the archive are `out`'s byte positions).
    public init(_ out: AtomicFileWriter) {
        self.out = out
    }

    /// Adds a member whose bytes `produce` hands to its `emit` argument in order. Stored data
    /// is aligned to `alignment` bytes in the file with a padding extra field (id 0xD935, as
    /// Android's zipalign), so that arrays can be mapped without copying when read back.
    public func addMember(
        name: String, deflate: Bool, alignment: Int,
        produce: (_ emit: (UnsafeRawBufferPointer) throws -> Void) throws -> Void
    ) throws {
        let nameBytes = Array(name.utf8)
        guard nameBytes.count <= 0xFFFF else { throw ZipError.cannotWrite("member name \"\(name)\" is too long") }
        let flags: UInt16 = nameBytes.allSatisfy { $0 < 0x80 } ? 0 : 0x0800
        let method: UInt16 = deflate ? 8 : 0
        let offset = out.bytesWritten
        var padding = 0
        if !deflate && alignment > 1 {
            padding = (alignment - (offset + 30 + nameBytes.count + 20) % alignment) % alignment
            if padding > 0 && padding < 6 { padding += alignment }
        }
        try out.write(
            localHeader(
                nameBytes, flags: flags, method: method, crc: 0, compressed: 0, uncompressed: 0,
                padding: padding, alignment: alignment))
        var crc: UInt32 = 0
        var uncompressed = 0
        var compressed = 0
        if deflate {
            let deflater = try RawDeflater()
            let sink: (UnsafeRawBufferPointer) throws -> Void = { piece in
                try self.out.write(piece)
                compressed += piece.count
            }
            try produce { piece in
                crc = CRC32.update(crc, piece)
                uncompressed += piece.count
                try deflater.compress(piece, finish: false, sink: sink)
            }
            try deflater.compress(UnsafeRawBufferPointer(start: nil, count: 0), finish: true, sink: sink)
        } else {
            try produce { piece in
                crc = CRC32.update(crc, piece)
                uncompressed += piece.count
                try self.out.write(piece)
            }
            compressed = uncompressed
        }
        try localHeader(
            nameBytes, flags: flags, method: method, crc: crc, compressed: compressed,
            uncompressed: uncompressed, padding: padding, alignment: alignment
        )
        .withUnsafeBytes { try out.write($0, at: offset) }
        appendCentral(
            nameBytes, flags: flags, method: method, crc: crc, compressed: compressed,
            uncompressed: uncompressed, offset: offset)
        count += 1
    }

    /// Writes the central directory and end records.
    public func finish() throws {
        let directoryOffset = out.bytesWritten
        try out.write(central)
        let directorySize = central.count
        var tail: [UInt8] = []
        if count > 0xFFFF || directoryOffset > ZipWriter.zip64Limit || directorySize > ZipWriter.zip64Limit {
            let recordOffset = out.bytesWritten
            tail.append32(ZipDirectory.zip64EndSignature)
            tail.append64(44)
            tail.append16(45); tail.append16(45)
            tail.append32(0); tail.append32(0)
            tail.append64(UInt64(count)); tail.append64(UInt64(count))
            tail.append64(UInt64(directorySize)); tail.append64(UInt64(directoryOffset))
            tail.append32(ZipDirectory.zip64LocatorSignature)
            tail.append32(0)
            tail.append64(UInt64(recordOffset))
            tail.append32(1)
        }
        tail.append32(ZipDirectory.endSignature)
        tail.append16(0); tail.append16(0)
        tail.append16(UInt16(min(count, 0xFFFF))); tail.append16(UInt16(min(count, 0xFFFF)))
        tail.append32(UInt32(min(directorySize, 0xFFFF_FFFF)))
        tail.append32(UInt32(min(directoryOffset, 0xFFFF_FFFF)))
        tail.append16(0)
        try out.write(tail)
    }

    private func localHeader(
        _ name: [UInt8], flags: UInt16, method: UInt16, crc: UInt32, compressed: Int,
        uncompressed: Int, padding: Int, alignment: Int
    ) -> [UInt8] {
        var header: [UInt8] = []
        header.reserveCapacity(30 + name.count + 20 + padding)
        header.append32(ZipDirectory.localSignature)
        header.append16(45)
        header.append16(flags)
        header.append16(method)
        header.append16(0) // time 00:00:00
        header.append16(0x21) // date 1980-01-01, as zipfile.ZipInfo's default
        header.append32(crc)
        header.append32(0xFFFF_FFFF)
        header.append32(0xFFFF_FFFF)
        header.append16(UInt16(name.count))
        header.append16(UInt16(20 + padding))
        header += name
        header.append16(0x0001)
        header.append16(16)
        header.append64(UInt64(uncompressed))
        header.append64(UInt64(compressed))
        if padding > 0 {
            header.append16(0xD935)
            header.append16(UInt16(padding - 4))
            header.append16(UInt16(alignment))
            header += repeatElement(0, count: padding - 6)
        }
        return header
    }

    private func appendCentral(
        _ name: [UInt8], flags: UInt16, method: UInt16, crc: UInt32, compressed: Int,
        uncompressed: Int, offset: Int
    ) {
        var zip64: [UInt64] = []
        var compressed32 = UInt32(truncatingIfNeeded: compressed),
            uncompressed32 = UInt32(truncatingIfNeeded: uncompressed)
        var offset32 = UInt32(truncatingIfNeeded: offset)
        if uncompressed > ZipWriter.zip64Limit || compressed > ZipWriter.zip64Limit {
            zip64 += [UInt64(uncompressed), UInt64(compressed)]
            compressed32 = 0xFFFF_FFFF
            uncompressed32 = 0xFFFF_FFFF
        }
        if offset > ZipWriter.zip64Limit {
            zip64.append(UInt64(offset))
            offset32 = 0xFFFF_FFFF
        }
        central.append32(ZipDirectory.centralSignature)
        central += [45, 3, 45, 0] // made by zip 4.5 on Unix, needs 4.5
        central.append16(flags)
        central.append16(method)
        central.append16(0)
        central.append16(0x21)
        central.append32(crc)
        central.append32(compressed32)
        central.append32(uncompressed32)
        central.append16(UInt16(name.count))
        central.append16(UInt16(zip64.isEmpty ? 0 : 4 + 8 * zip64.count))
        central.append16(0) // comment
        central.append16(0) // disk
        central.append16(0) // internal attributes
        central.append32(0o600 << 16)
        central.append32(offset32)
        central += name
        if !zip64.isEmpty {
            central.append16(0x0001)
            central.append16(UInt16(8 * zip64.count))
            for value in zip64 { central.append64(value) }
        }
    }
}

extension Array where Element == UInt8 {
    mutating func append16(_ value: UInt16) { Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) } }
    mutating func append32(_ value: UInt32) { Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) } }
    mutating func append64(_ value: UInt64) { Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) } }
}
