import LetheCore
import LetheIR
import LetheZip

extension NPZFormat {
    /// Writes `model`'s initializers as an `.npz` (member `NAME.npy` per initializer, in order),
    /// atomically.
    ///
    /// With `original` and the same names in the same order, the archive is the original's bytes
    /// with changed stored members overwritten in place (CRC fixed in both headers): byte-identical
    /// when nothing changed. Otherwise it is written fresh like `np.savez` / `np.savez_compressed`;
    /// members present in `original` keep their compression, new ones follow `compressed`.
    /// Throws for tensors NumPy has no dtype for (bfloat16, float8). String tensors (`bytes`,
    /// `unicode`) are written as NumPy string arrays, their last axis the width.
    public static func write(_ model: Model, to path: String, original: NPZFile? = nil, compressed: Bool = false) throws
    {
        let arrays = model.graph.initializers.map { (name: $0.name, tensor: $0.tensor) }
        try validate(arrays)
        if let original, let edits = try patchEdits(arrays, original: original) {
            try writePatched(original, edits: edits, to: path)
            return
        }
        var originalMethods: [String: Bool] = [:]
        for member in original?.members ?? [] { originalMethods[member.arrayName] = member.zip.isDeflated }
        try writeFresh(arrays, deflate: arrays.map { originalMethods[$0.name] ?? compressed }, to: path)
    }

    /// Writes named arrays (a data file, or a run's outputs) as a fresh `.npz`.
    public static func writeArrays(
        _ arrays: [(name: String, tensor: Tensor)], to path: String,
        compressed: Bool = false
    ) throws {
        try validate(arrays)
        try writeFresh(arrays, deflate: arrays.map { _ in compressed }, to: path)
    }

    private static func validate(_ arrays: [(name: String, tensor: Tensor)]) throws {
        var seen = Set<String>()
        for (name, tensor) in arrays {
            _ = try NPYHeader.numPyType(dtype: tensor.dtype, shape: tensor.shape, name: name)
            guard !name.isEmpty, !name.utf8.contains(0) else {
                throw ZipError.cannotWrite("array name \"\(name)\" is empty or holds a NUL byte")
            }
            guard seen.insert(name).inserted else { throw ZipError.cannotWrite("two arrays are called \"\(name)\"") }
        }
    }

    private static func writeFresh(_ arrays: [(name: String, tensor: Tensor)], deflate: [Bool], to path: String) throws
    {
        try AtomicFileWriter.write(to: path) { out in
            let zip = ZipWriter(out)
            for (index, (name, tensor)) in arrays.enumerated() {
                let header = try NPYFormat.header(for: tensor, name: name)
                try zip.addMember(name: name + ".npy", deflate: deflate[index], alignment: 64) { emit in
                    try header.withUnsafeBytes { try emit($0) }
                    try tensor.withUnsafeBytes { bytes in
                        try TensorStreamer.forEachChunk(bytes, release: tensor.storage.mappedFile != nil, emit)
                    }
                }
            }
            try zip.finish()
        }
    }

    /// One replacement of original bytes: either a small field or a member's new content.
    private struct Edit {
        var offset: Int
        var bytes: [UInt8]
        var tensor: Tensor?
        var length: Int { bytes.count + (tensor?.byteCount ?? 0) }
    }

    /// The in-place edits that turn `original` into `arrays`, or nil when the archive must be
    /// written fresh (names or order changed, or a changed member is deflated or changes size).
    private static func patchEdits(_ arrays: [(name: String, tensor: Tensor)], original: NPZFile) throws -> [Edit]? {
        guard arrays.count == original.members.count else { return nil }
        var edits: [Edit] = []
        for ((name, tensor), member) in zip(arrays, original.members) {
            guard name == member.arrayName else { return nil }
            if tensor.storage === member.tensor.storage || tensor.isBitwiseEqual(to: member.tensor) { continue }
            let zipMember = member.zip
            guard zipMember.method == 0, !zipMember.usesDataDescriptor,
                zipMember.name == name + ".npy"
            else { return nil }
            let header = try NPYFormat.header(for: tensor, name: name)
            guard header.count + tensor.byteCount == zipMember.uncompressedSize else { return nil }
            var crc = CRC32.of(header)
            tensor.withUnsafeBytes { crc = CRC32.update(crc, $0) }
            let crcBytes = withUnsafeBytes(of: crc.littleEndian) { Array($0) }
            edits.append(Edit(offset: zipMember.crcOffsets.local, bytes: crcBytes))
            edits.append(Edit(offset: zipMember.dataOffset, bytes: header, tensor: tensor))
            edits.append(Edit(offset: zipMember.crcOffsets.central, bytes: crcBytes))
        }
        return edits.sorted { $0.offset < $1.offset }
    }

    private static func writePatched(_ original: NPZFile, edits: [Edit], to path: String) throws {
        let source = original.source.bytes
        let release = original.source.mappedFile != nil
        try AtomicFileWriter.write(to: path) { out in
            var position = 0
            func copy(upTo end: Int) throws {
                try TensorStreamer.forEachChunk(
                    UnsafeRawBufferPointer(rebasing: source[position..<end]),
                    release: release
                ) { try out.write($0) }
                position = end
            }
            for edit in edits {
                try copy(upTo: edit.offset)
                try out.write(edit.bytes)
                if let tensor = edit.tensor {
                    try tensor.withUnsafeBytes { bytes in
                        try TensorStreamer.forEachChunk(bytes, release: tensor.storage.mappedFile != nil) {
                            try out.write($0)
                        }
                    }
                }
                position += edit.length
            }
            try copy(upTo: source.count)
        }
    }
}
