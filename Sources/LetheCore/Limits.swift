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

    public static let `default` = Limits()

    /// Physical memory of this machine, the natural cap on any single tensor.
    public static var physicalMemory: Int {
        let pages = sysconf(Int32(_SC_PHYS_PAGES))
        let size = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, size > 0 else { return 1 << 34 }
        let (product, overflow) = pages.multipliedReportingOverflow(by: size)
        return overflow ? Int.max : product
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
