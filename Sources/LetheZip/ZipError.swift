import LetheCore

/// What is wrong with a zip archive (the container of `.npz`), and where. Two cases speak of
/// npz (`notAnArray`, `cannotWrite`) because npz is the one archive Lethe reads and writes; they
/// keep their wording so that what users see did not change when the zip code became a module.
public enum ZipError: LetheError {
    case noEndRecord(fileSize: Int)
    case invalidRecord(what: String, offset: Int, reason: String)
    case multiDisk
    case tooManyEntries(count: Int, limit: Int)
    case encrypted(name: String)
    case unsupportedCompression(name: String, method: UInt16)
    case duplicateMember(name: String)
    /// The local header disagrees with the central directory.
    case headerMismatch(name: String, field: String)
    /// A member's bytes run outside the file or into another member.
    case badMemberRange(name: String, offset: Int, reason: String)
    case crcMismatch(name: String, expected: UInt32, actual: UInt32)
    /// A deflated member whose declared size or ratio is beyond the limits (zip-bomb guard).
    case suspiciousRatio(name: String, compressed: Int, uncompressed: Int, limit: Int)
    case inflateFailed(name: String, reason: String)
    /// A member that inflates to a different size than declared.
    case sizeMismatch(name: String, declared: Int, actual: Int)
    case notAnArray(name: String)
    case badMemberName(name: String, reason: String)
    case cannotWrite(String)

    public var description: String {
        switch self {
        case .noEndRecord(let size):
            "zip: no end-of-central-directory record in the last 65,557 bytes of the \(size)-byte file (not a zip/npz)"
        case .invalidRecord(let what, let offset, let reason):
            "zip: \(what) at offset \(offset): \(reason)"
        case .multiDisk:
            "zip: multi-disk archives are not supported"
        case .tooManyEntries(let count, let limit):
            "zip: \(count) members, over the limit of \(limit)"
        case .encrypted(let name):
            "zip: member \"\(name)\" is encrypted"
        case .unsupportedCompression(let name, let method):
            "zip: member \"\(name)\" uses compression method \(method); only stored (0) and deflated (8) are read"
        case .duplicateMember(let name):
            "zip: two members are called \"\(name)\""
        case .headerMismatch(let name, let field):
            "zip: member \"\(name)\": local header disagrees with the central directory on \(field)"
        case .badMemberRange(let name, let offset, let reason):
            "zip: member \"\(name)\" at offset \(offset): \(reason)"
        case .crcMismatch(let name, let expected, let actual):
            "zip: member \"\(name)\": CRC-32 is \(hex(actual)), the archive declares \(hex(expected))"
        case .suspiciousRatio(let name, let compressed, let uncompressed, let limit):
            "zip: member \"\(name)\" declares \(uncompressed) bytes from \(compressed) compressed "
                + "(ratio over \(limit)); refusing a likely zip bomb"
        case .inflateFailed(let name, let reason):
            "zip: member \"\(name)\": corrupt deflate data (\(reason))"
        case .sizeMismatch(let name, let declared, let actual):
            "zip: member \"\(name)\" inflates to \(actual) bytes, the archive declares \(declared)"
        case .notAnArray(let name):
            "npz: member \"\(name)\" is not a .npy array"
        case .badMemberName(let name, let reason):
            "zip: member name \"\(name)\" \(reason)"
        case .cannotWrite(let reason):
            "npz: cannot write: \(reason)"
        }
    }
}

private func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
}
