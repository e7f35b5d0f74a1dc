import LetheCore

/// One member of a zip archive, as its central directory and local header describe it.
public struct ZipMember: Sendable {
    /// The member's name in the archive (UTF-8).
    public var name: String
    /// The general-purpose flags (bit 3: data descriptor, bit 11: UTF-8 name).
    public var flags: UInt16
    /// 0 stored, 8 deflated (the only two read).
    public var method: UInt16
    /// CRC-32 of the uncompressed bytes.
    public var crc: UInt32
    /// Bytes in the file (equal to `uncompressedSize` for stored members).
    public var compressedSize: Int
    public var uncompressedSize: Int
    /// Where its local header starts.
    public var localHeaderOffset: Int
    /// Where the member's (possibly compressed) bytes start.
    public var dataOffset: Int
    /// Where its central-directory record starts.
    public var centralOffset: Int

    /// Whether sizes and CRC follow the data instead of sitting in the local header.
    public var usesDataDescriptor: Bool { flags & 0x0008 != 0 }
    public var isDeflated: Bool { method == 8 }
    /// The member's bytes in the file, as stored (compressed or not).
    public var dataRange: Range<Int> { dataOffset..<(dataOffset + compressedSize) }
    /// Where the CRC-32 sits in the local header and in the central record: the two fields to
    /// patch when a stored member's bytes are overwritten in place.
    public var crcOffsets: (local: Int, central: Int) { (localHeaderOffset + 14, centralOffset + 16) }
}

/// The central directory of a zip archive, validated against every local header.
public struct ZipDirectory: Sendable {
    /// Members in central-directory order.
    public var members: [ZipMember]
    /// Where the central directory starts (everything before it is members).
    public var centralDirectoryOffset: Int

    static let localSignature: UInt32 = 0x0403_4B50
    static let centralSignature: UInt32 = 0x0201_4B50
    static let endSignature: UInt32 = 0x0605_4B50
    static let zip64EndSignature: UInt32 = 0x0606_4B50
    static let zip64LocatorSignature: UInt32 = 0x0706_4B50

    /// Reads the directory of the archive in `bytes`; nothing is inflated here.
    public static func read(_ bytes: UnsafeRawBufferPointer, limits: Limits) throws -> ZipDirectory {
        let end = try findEndRecord(bytes)
        var cursor = ByteCursor(bytes, offset: end + 4)
        let diskNumber = try cursor.read(UInt16.self, "end record")
        let directoryDisk = try cursor.read(UInt16.self, "end record")
        var entriesOnDisk = Int(try cursor.read(UInt16.self, "end record"))
        var totalEntries = Int(try cursor.read(UInt16.self, "end record"))
        var directorySize = Int(try cursor.read(UInt32.self, "end record"))
        var directoryOffset = Int(try cursor.read(UInt32.self, "end record"))
        guard diskNumber == 0, directoryDisk == 0, entriesOnDisk == totalEntries else { throw ZipError.multiDisk }
        var directoryEnd = end

        // Python's zipfile (and so NumPy) looks for a ZIP64 locator just before the end record.
        if end >= 20, bytes.loadUnaligned(fromByteOffset: end - 20, as: UInt32.self) == zip64LocatorSignature {
            var locator = ByteCursor(bytes, offset: end - 16)
            let disk = try locator.read(UInt32.self, "ZIP64 locator")
            let recordOffset = try locator.read(UInt64.self, "ZIP64 locator")
            let disks = try locator.read(UInt32.self, "ZIP64 locator")
            guard disk == 0, disks <= 1 else { throw ZipError.multiDisk }
            guard end - 20 >= 56, recordOffset <= UInt64(end - 20 - 56) else {
                throw ZipError.invalidRecord(
                    what: "ZIP64 locator", offset: end - 20,
                    reason: "points to \(recordOffset), leaving no room for the ZIP64 end record")
            }
            let recordStart = Int(recordOffset)
            var record = ByteCursor(bytes, offset: recordStart)
            guard try record.read(UInt32.self, "ZIP64 end record") == zip64EndSignature else {
                throw ZipError.invalidRecord(what: "ZIP64 end record", offset: recordStart, reason: "bad signature")
            }
            let recordSize = try record.read(UInt64.self, "ZIP64 end record")
            guard recordSize >= 44, recordSize <= UInt64(end - 20 - recordStart - 12) else {
                throw ZipError.invalidRecord(
                    what: "ZIP64 end record", offset: recordStart,
                    reason: "size \(recordSize) does not fit before the locator")
            }
            try record.skip(4, "ZIP64 end record") // versions
            let disk64 = try record.read(UInt32.self, "ZIP64 end record")
            let directoryDisk64 = try record.read(UInt32.self, "ZIP64 end record")
            let onDisk64 = try record.read(UInt64.self, "ZIP64 end record")
            let total64 = try record.read(UInt64.self, "ZIP64 end record")
            let size64 = try record.read(UInt64.self, "ZIP64 end record")
            let offset64 = try record.read(UInt64.self, "ZIP64 end record")
            guard disk64 == 0, directoryDisk64 == 0, onDisk64 == total64 else { throw ZipError.multiDisk }
            guard total64 <= UInt64(Int.max), size64 <= UInt64(bytes.count), offset64 <= UInt64(bytes.count) else {
                throw ZipError.invalidRecord(
                    what: "ZIP64 end record", offset: recordStart,
                    reason: "sizes exceed the file")
            }
            entriesOnDisk = Int(onDisk64)
            totalEntries = Int(total64)
            directorySize = Int(size64)
            directoryOffset = Int(offset64)
            directoryEnd = recordStart
        }

        guard totalEntries <= limits.maxZipEntries else {
            throw ZipError.tooManyEntries(count: totalEntries, limit: limits.maxZipEntries)
        }
        guard directoryOffset <= directoryEnd, directorySize == directoryEnd - directoryOffset else {
            throw ZipError.invalidRecord(
                what: "central directory", offset: directoryOffset,
                reason: "declared size \(directorySize) does not end at the end record (\(directoryEnd))")
        }
        guard totalEntries <= directorySize / 46 || totalEntries == 0 else {
            throw ZipError.invalidRecord(
                what: "central directory", offset: directoryOffset,
                reason: "\(totalEntries) entries cannot fit in \(directorySize) bytes")
        }

        var members: [ZipMember] = []
        members.reserveCapacity(totalEntries)
        var names = Set<String>()
        var central = ByteCursor(UnsafeRawBufferPointer(rebasing: bytes[0..<directoryEnd]), offset: directoryOffset)
        for _ in 0..<totalEntries {
            var member = try readCentralRecord(&central)
            guard names.insert(member.name).inserted else { throw ZipError.duplicateMember(name: member.name) }
            try checkLocalHeader(&member, bytes, directoryOffset: directoryOffset)
            members.append(member)
        }
        guard central.offset == directoryEnd else {
            throw ZipError.invalidRecord(
                what: "central directory", offset: central.offset,
                reason: "\(directoryEnd - central.offset) unexplained bytes after the last entry")
        }
        // Members must not share bytes (overlapping members are a known zip-bomb construction).
        let byOffset = members.sorted { $0.localHeaderOffset < $1.localHeaderOffset }
        for (a, b) in zip(byOffset, byOffset.dropFirst()) where a.dataRange.upperBound > b.localHeaderOffset {
            throw ZipError.badMemberRange(
                name: b.name, offset: b.localHeaderOffset,
                reason: "overlaps member \"\(a.name)\"")
        }
        return ZipDirectory(members: members, centralDirectoryOffset: directoryOffset)
    }

    /// The offset of the end-of-central-directory record, searched from the end over at most
    /// the record plus the longest comment.
    private static func findEndRecord(_ bytes: UnsafeRawBufferPointer) throws -> Int {
        guard bytes.count >= 22 else { throw ZipError.noEndRecord(fileSize: bytes.count) }
        let lowest = max(0, bytes.count - 22 - 0xFFFF)
        var offset = bytes.count - 22
        while offset >= lowest {
            if bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self) == endSignature {
                let commentLength = Int(bytes.loadUnaligned(fromByteOffset: offset + 20, as: UInt16.self))
                if offset + 22 + commentLength <= bytes.count { return offset }
            }
            offset -= 1
        }
        throw ZipError.noEndRecord(fileSize: bytes.count)
    }

    private static func readCentralRecord(_ cursor: inout ByteCursor) throws -> ZipMember {
        let start = cursor.offset
        guard try cursor.read(UInt32.self, "central directory entry") == centralSignature else {
            throw ZipError.invalidRecord(what: "central directory entry", offset: start, reason: "bad signature")
        }
        try cursor.skip(4, "central directory entry") // versions made by / needed
        let flags = try cursor.read(UInt16.self, "central directory entry")
        let method = try cursor.read(UInt16.self, "central directory entry")
        try cursor.skip(4, "central directory entry") // time, date
        let crc = try cursor.read(UInt32.self, "central directory entry")
        let compressed32 = try cursor.read(UInt32.self, "central directory entry")
        let uncompressed32 = try cursor.read(UInt32.self, "central directory entry")
        let nameLength = Int(try cursor.read(UInt16.self, "central directory entry"))
        let extraLength = Int(try cursor.read(UInt16.self, "central directory entry"))
        let commentLength = Int(try cursor.read(UInt16.self, "central directory entry"))
        let diskStart = try cursor.read(UInt16.self, "central directory entry")
        try cursor.skip(6, "central directory entry") // attributes
        let offset32 = try cursor.read(UInt32.self, "central directory entry")
        let nameBytes = try cursor.readBytes(nameLength, "member name")
        let extra = try cursor.readBytes(extraLength, "extra field")
        try cursor.skip(commentLength, "member comment")

        let name = try decodeName(nameBytes, flags: flags)
        guard flags & 0x0001 == 0 else { throw ZipError.encrypted(name: name) }
        guard method == 0 || method == 8 else { throw ZipError.unsupportedCompression(name: name, method: method) }

        var uncompressed = UInt64(uncompressed32), compressed = UInt64(compressed32), offset = UInt64(offset32)
        var disk = UInt32(diskStart)
        try readZip64Extra(
            extra, name: name, at: start,
            marked: (
                uncompressed32 == 0xFFFF_FFFF, compressed32 == 0xFFFF_FFFF,
                offset32 == 0xFFFF_FFFF, diskStart == 0xFFFF
            ),
            uncompressed: &uncompressed, compressed: &compressed, offset: &offset, disk: &disk)
        guard disk == 0 else { throw ZipError.multiDisk }
        let limit = UInt64(Int.max / 2)
        guard uncompressed <= limit, compressed <= limit, offset <= limit else {
            throw ZipError.badMemberRange(name: name, offset: start, reason: "declared sizes are impossibly large")
        }
        return ZipMember(
            name: name, flags: flags, method: method, crc: crc, compressedSize: Int(compressed),
            uncompressedSize: Int(uncompressed), localHeaderOffset: Int(offset), dataOffset: 0,
            centralOffset: start)
    }

    private static func decodeName(_ bytes: UnsafeRawBufferPointer, flags: UInt16) throws -> String {
        if bytes.allSatisfy({ $0 < 0x80 }) || flags & 0x0800 != 0 {
            guard let name = String(validating: bytes, as: UTF8.self) else {
                throw ZipError.badMemberName(name: String(decoding: bytes, as: UTF8.self), reason: "is not valid UTF-8")
            }
            return name
        }
        // Without the UTF-8 flag the name is CP437; NumPy never writes such names.
        throw ZipError.badMemberName(
            name: String(decoding: bytes, as: UTF8.self),
            reason: "is not ASCII and lacks the UTF-8 flag")
    }

    /// Fills the fields whose 32-bit value was the ZIP64 marker from the ZIP64 extra field, in
    /// the order the specification fixes (only the marked fields are present).
    private static func readZip64Extra(
        _ extra: UnsafeRawBufferPointer, name: String, at recordOffset: Int,
        marked: (uncompressed: Bool, compressed: Bool, offset: Bool, disk: Bool),
        uncompressed: inout UInt64, compressed: inout UInt64,
        offset: inout UInt64, disk: inout UInt32
    ) throws {
        guard marked.uncompressed || marked.compressed || marked.offset || marked.disk else { return }
        var cursor = ByteCursor(extra)
        while cursor.remaining >= 4 {
            let id = try cursor.read(UInt16.self, "extra field")
            let size = Int(try cursor.read(UInt16.self, "extra field"))
            let body = try cursor.readBytes(size, "extra field")
            guard id == 0x0001 else { continue }
            var field = ByteCursor(body)
            do {
                if marked.uncompressed { uncompressed = try field.read(UInt64.self, "ZIP64 extra") }
                if marked.compressed { compressed = try field.read(UInt64.self, "ZIP64 extra") }
                if marked.offset { offset = try field.read(UInt64.self, "ZIP64 extra") }
                if marked.disk { disk = try field.read(UInt32.self, "ZIP64 extra") }
            } catch {
                throw ZipError.invalidRecord(
                    what: "ZIP64 extra field of \"\(name)\"", offset: recordOffset,
                    reason: "too short for the marked sizes")
            }
            return
        }
        throw ZipError.invalidRecord(
            what: "central directory entry of \"\(name)\"", offset: recordOffset,
            reason: "sizes are marked ZIP64 but there is no ZIP64 extra field")
    }

    /// Cross-checks the local header with the central record and sets `dataOffset`.
    private static func checkLocalHeader(
        _ member: inout ZipMember, _ bytes: UnsafeRawBufferPointer,
        directoryOffset: Int
    ) throws {
        let start = member.localHeaderOffset
        guard start <= directoryOffset - 30 else {
            throw ZipError.badMemberRange(
                name: member.name, offset: start, reason: "local header is not before the central directory")
        }
        var cursor = ByteCursor(UnsafeRawBufferPointer(rebasing: bytes[0..<directoryOffset]), offset: start)
        guard try cursor.read(UInt32.self, "local header") == localSignature else {
            throw ZipError.invalidRecord(
                what: "local header of \"\(member.name)\"", offset: start, reason: "bad signature")
        }
        try cursor.skip(2, "local header")
        let flags = try cursor.read(UInt16.self, "local header")
        let method = try cursor.read(UInt16.self, "local header")
        try cursor.skip(4, "local header")
        let crc = try cursor.read(UInt32.self, "local header")
        let compressed32 = try cursor.read(UInt32.self, "local header")
        let uncompressed32 = try cursor.read(UInt32.self, "local header")
        let nameLength = Int(try cursor.read(UInt16.self, "local header"))
        let extraLength = Int(try cursor.read(UInt16.self, "local header"))
        let nameBytes = try cursor.readBytes(nameLength, "local member name")
        let extra = try cursor.readBytes(extraLength, "local extra field")
        guard String(decoding: nameBytes, as: UTF8.self) == member.name else {
            throw ZipError.headerMismatch(name: member.name, field: "name")
        }
        guard method == member.method else {
            throw ZipError.headerMismatch(name: member.name, field: "compression method")
        }
        guard flags & 0x0001 == 0 else { throw ZipError.encrypted(name: member.name) }
        if flags & 0x0008 == 0 {
            var uncompressed = UInt64(uncompressed32), compressed = UInt64(compressed32)
            if uncompressed32 == 0xFFFF_FFFF || compressed32 == 0xFFFF_FFFF {
                // The local ZIP64 field always holds both sizes.
                var extraCursor = ByteCursor(extra)
                while extraCursor.remaining >= 4 {
                    let id = try extraCursor.read(UInt16.self, "local extra field")
                    let size = Int(try extraCursor.read(UInt16.self, "local extra field"))
                    let body = try extraCursor.readBytes(size, "local extra field")
                    if id == 0x0001 {
                        var field = ByteCursor(body)
                        if uncompressed32 == 0xFFFF_FFFF {
                            uncompressed = try field.read(UInt64.self, "local ZIP64 extra")
                        }
                        if compressed32 == 0xFFFF_FFFF { compressed = try field.read(UInt64.self, "local ZIP64 extra") }
                        break
                    }
                }
            }
            guard crc == member.crc else { throw ZipError.headerMismatch(name: member.name, field: "CRC-32") }
            guard uncompressed == UInt64(member.uncompressedSize) else {
                throw ZipError.headerMismatch(name: member.name, field: "uncompressed size")
            }
            guard compressed == UInt64(member.compressedSize) else {
                throw ZipError.headerMismatch(name: member.name, field: "compressed size")
            }
        }
        member.dataOffset = cursor.offset
        guard member.compressedSize <= directoryOffset - member.dataOffset else {
            throw ZipError.badMemberRange(
                name: member.name, offset: member.dataOffset,
                reason: "\(member.compressedSize) bytes run into the central directory")
        }
        if member.method == 0 && member.compressedSize != member.uncompressedSize {
            throw ZipError.headerMismatch(name: member.name, field: "stored size (compressed ≠ uncompressed)")
        }
    }
}
