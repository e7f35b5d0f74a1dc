#if canImport(Glibc)
import Glibc
#endif

/// Returns freed heap memory to the system between phases. glibc keeps what the runtime's worker
/// threads freed in their arenas, so after a statistics pass over 224² images the process would
/// otherwise carry the pass's activations (hundreds of MB) as resident into the projection.
enum FreedMemory {
    /// glibc's `malloc_trim`, which Swift's Glibc module does not export; nil elsewhere.
    private static let trim: (@convention(c) (Int) -> Int32)? = {
        #if canImport(Glibc)
        guard let symbol = dlsym(nil, "malloc_trim") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)
        #else
        return nil
        #endif
    }()

    static func release() { _ = trim?(0) }
}
