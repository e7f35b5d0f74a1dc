import LetheCore
import LetheIR
import LetheZip

/// An `.npz` archive as read: the model (one initializer per member, named as `numpy.load`
/// names them, without `.npy`) plus what a byte-identical rewrite needs.
public struct NPZFile: Sendable {
    public let path: String
    public var model: Model

    struct Member: Sendable {
        /// The array name (the member name without `.npy`).
        var arrayName: String
        var zip: ZipMember
        /// The array as read, kept apart from `model` (which the caller may change).
        var tensor: Tensor
    }

    /// Members in central-directory order.
    let members: [Member]
    let directory: ZipDirectory
    /// The whole file (a view of the mapping).
    let source: TensorStorage
}

/// Reads and writes NumPy `.npz` archives with Lethe's own zip code over zlib.
public enum NPZFormat {
    /// Maps `path` and reads every member. Stored, aligned, little-endian C-order arrays point
    /// into the mapping; the rest are decoded. Every CRC is checked.
    public static func read(path: String, limits: Limits = .default) throws -> NPZFile {
        try FileError.wrapping(path) {
            let file = try MappedFile(path: path)
            let source = TensorStorage(file: file, range: 0..<file.count)
            let directory = try ZipDirectory.read(source.bytes, limits: limits)
            var members: [NPZFile.Member] = []
            var initializers: [Initializer] = []
            var names = Set<String>()
            members.reserveCapacity(directory.members.count)
            for zipMember in directory.members {
                let arrayName =
                    zipMember.name.hasSuffix(".npy")
                    ? String(zipMember.name.dropLast(4)) : zipMember.name
                guard names.insert(arrayName).inserted else { throw ZipError.duplicateMember(name: arrayName) }
                let tensor = try readMember(zipMember, source: source, mapped: file, limits: limits)
                members.append(.init(arrayName: arrayName, zip: zipMember, tensor: tensor))
                initializers.append(Initializer(name: arrayName, tensor: tensor))
            }
            return NPZFile(
                path: path, model: Model(graph: Graph(initializers: initializers)), members: members,
                directory: directory, source: source)
        }
    }

    /// Reads the named arrays of a data file (`x`, `y`, or a run's inputs), in archive order,
    /// with the same validation as `read`.
    public static func readArrays(path: String, limits: Limits = .default) throws -> [(name: String, tensor: Tensor)] {
        try read(path: path, limits: limits).model.graph.initializers.map { ($0.name, $0.tensor) }
    }

    private static func readMember(
        _ member: ZipMember, source: TensorStorage, mapped: MappedFile,
        limits: Limits
    ) throws -> Tensor {
        let name = member.name
        let data = UnsafeRawBufferPointer(rebasing: source.bytes[member.dataRange])
        if member.method == 0 {
            // In chunks, dropping each from memory once summed: a 1 GB member costs 16 MB a core.
            let crc = CRC32.of(data, release: true)
            guard crc == member.crc else { throw ZipError.crcMismatch(name: name, expected: member.crc, actual: crc) }
            guard data.count >= 6, data.prefix(6).elementsEqual(NPYHeader.magic) else {
                throw ZipError.notAnArray(name: name)
            }
            return try NPYFormat.decode(data, name: name, limits: limits, mapped: mapped, fileOffset: member.dataOffset)
        }
        return try inflateMember(member, data: data, limits: limits)
    }

    /// Inflates a deflated member straight into the tensor's storage, never past the size the
    /// archive declares, refusing declared sizes and ratios beyond the limits first.
    private static func inflateMember(
        _ member: ZipMember, data: UnsafeRawBufferPointer, limits: Limits
    ) throws -> Tensor {
        let name = member.name
        let declared = member.uncompressedSize
        let (ceiling, overflow) = max(member.compressedSize, 1).multipliedReportingOverflow(by: limits.maxDeflateRatio)
        guard overflow || declared <= ceiling else {
            throw ZipError.suspiciousRatio(
                name: name, compressed: member.compressedSize, uncompressed: declared,
                limit: limits.maxDeflateRatio)
        }
        let (allowance, tooLarge) = limits.maxTensorBytes.addingReportingOverflow(1 << 20)
        guard tooLarge || declared <= allowance else {
            throw LimitError(what: "\(name): uncompressed size", value: declared, limit: limits.maxTensorBytes)
        }
        let inflater = try RawInflater(input: data, name: name, declared: declared)
        let prefixCount = min(declared, NPYHeader.prefixLength)
        var header = [UInt8](repeating: 0, count: prefixCount)
        try header.withUnsafeMutableBytes { try inflater.read(into: $0) }
        guard header.count >= 6, header.prefix(6).elementsEqual(NPYHeader.magic) else {
            throw ZipError.notAnArray(name: name)
        }
        let headerLength = try header.withUnsafeBytes {
            try NPYHeader.totalLength(prefix: $0, name: name, limits: limits)
        }
        guard headerLength <= declared else {
            throw NPYError.invalidHeader(
                name: name, offset: declared,
                reason: "header of \(headerLength) bytes is longer than the member")
        }
        // A version 1.0 header announcing under 2 bytes of text ends inside the 12 bytes already read.
        guard headerLength >= prefixCount else {
            throw NPYError.invalidHeader(
                name: name, offset: headerLength,
                reason: "header of \(headerLength) bytes is too short to hold its dictionary")
        }
        var rest = [UInt8](repeating: 0, count: headerLength - prefixCount)
        try rest.withUnsafeMutableBytes { try inflater.read(into: $0) }
        header += rest
        let parsed = try header.withUnsafeBytes { try NPYHeader.parse($0, name: name, limits: limits) }
        guard declared - headerLength == parsed.dataByteCount else {
            throw NPYError.dataSizeMismatch(name: name, expected: parsed.dataByteCount, actual: declared - headerLength)
        }
        let storage = TensorStorage(uninitializedByteCount: parsed.dataByteCount)
        if parsed.dataByteCount > 0 { try inflater.read(into: storage.mutableBytes) }
        try inflater.finish()
        guard inflater.crc == member.crc else {
            throw ZipError.crcMismatch(name: name, expected: member.crc, actual: inflater.crc)
        }
        let tensor = Tensor(dtype: parsed.dtype, shape: parsed.tensorShape, storage: storage)
        return NPYFormat.normalize(tensor, header: parsed)
    }
}

extension NPZFile {
    /// A member of the archive as stored (for `inspect`).
    public struct MemberInfo: Sendable {
        /// The zip member name (`NAME.npy`).
        public let memberName: String
        /// The initializer name (without `.npy`).
        public let arrayName: String
        public let isCompressed: Bool
        public let compressedSize: Int
        public let uncompressedSize: Int
        /// Where the member's local header starts in the file.
        public let offset: Int
    }

    /// Members in archive order, as read.
    public var memberInfo: [MemberInfo] {
        members.map {
            MemberInfo(
                memberName: $0.zip.name, arrayName: $0.arrayName, isCompressed: $0.zip.isDeflated,
                compressedSize: $0.zip.compressedSize, uncompressedSize: $0.zip.uncompressedSize,
                offset: $0.zip.localHeaderOffset)
        }
    }
}
