#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Caps that readers check before they allocate anything sized by a file.
///
/// The defaults admit any real checkpoint this machine can hold and refuse the declared sizes a
/// corrupt or hostile file uses to exhaust memory.
public struct Limits: Sendable {
    /// Largest number of bytes one tensor may occupy once decoded.
    public var maxTensorBytes: Int
    /// Largest number of elements in one tensor.
    public var maxElements: Int
    /// Largest safetensors JSON header (the reference reader's limit).
    public var maxSafetensorsHeader: Int = 100_000_000
    /// Largest `.npy` header (NumPy refuses larger ones unless told otherwise).
    public var maxNPYHeader: Int = 10_000
    /// Most members in one zip archive.
    public var maxZipEntries: Int = 100_000
    /// Largest uncompressed/compressed ratio accepted for a deflated member (zip-bomb guard).
    public var maxDeflateRatio: Int = 1_100
    /// Deepest nesting of protobuf messages or subgraphs.
    public var maxNestingDepth: Int = 64
    /// Most dimensions in one shape.
    public var maxRank: Int = 64

    public init(maxTensorBytes: Int = Limits.physicalMemory, maxElements: Int = Limits.physicalMemory) {
        self.maxTensorBytes = maxTensorBytes
        self.maxElements = maxElements
    }

    /// The limits every reader and the runtime use unless given others: `Limits()`, with the tensor
    /// caps lowered by `LETHE_MAX_TENSOR_BYTES` (bytes, or with a K/M/G suffix) when it is set, so a
    /// pipeline can state how much memory one tensor of an untrusted file may take.
    public static let `default`: Limits = {
        var limits = Limits()
        if let text = getenv("LETHE_MAX_TENSOR_BYTES").map({ String(cString: $0) }), let bytes = parseByteCount(text) {
            limits.maxTensorBytes = bytes
            limits.maxElements = min(limits.maxElements, bytes)
        }
        return limits
    }()

    /// `1234`, `64K`, `512M`, `2G` (powers of 1024); nil when malformed or not positive.
    public static func parseByteCount(_ text: String) -> Int? {
        var digits = text.filter { !$0.isWhitespace }.uppercased()
        var scale = 1
        if let last = digits.last, let shift = ["K": 10, "M": 20, "G": 30, "T": 40][String(last)] {
            scale = 1 << shift
            digits.removeLast()
        }
        guard let value = Int(digits), value > 0 else { return nil }
        let (bytes, overflow) = value.multipliedReportingOverflow(by: scale)
        return overflow ? nil : bytes
    }

    /// Physical memory of this machine, the natural cap on any single tensor.
    public static var physicalMemory: Int {
        let pages = sysconf(Int32(_SC_PHYS_PAGES))
        let size = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, size > 0 else { return 1 << 34 }
        let (product, overflow) = pages.multipliedReportingOverflow(by: size)
        return overflow ? Int.max : product
    }
}
