#if canImport(Glibc)
import Glibc
#endif

/// How the process's heap (glibc's malloc) treats the large, short-lived buffers of tensors.
///
/// By default glibc raises its mmap threshold each time a large block is freed (up to 32 MiB), after
/// which blocks of that size come from the heap and, once freed, stay resident: a ViT-B/16 evaluation
/// in batches of 16 grew by about 50 MB a batch (1.3 GB after one batch, 2.0–2.3 GB after twelve).
/// Swift's Glibc module does not export `mallopt` or `malloc_trim`, so they are looked up by name.
public enum HeapPolicy {
    private typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
    private typealias MallocTrim = @convention(c) (Int) -> Int32

    private static func symbol<T>(_ name: String, as type: T.Type) -> T? {
        #if canImport(Glibc)
        guard let address = dlsym(nil, name) else { return nil }
        return unsafeBitCast(address, to: type)
        #else
        return nil
        #endif
    }

    /// Blocks of 4 MiB and more are mapped from the system and returned to it when freed; freed heap
    /// below 128 MiB at the top stays for reuse. With these two fixed, the ViT-B/16 evaluation stays at
    /// 1.3 GB; a lower threshold (1 MiB) made the sample CNN 2× slower in page faults, and the default
    /// trim threshold that fixing the mmap one implies (128 kB) as much.
    public static func returnLargeBuffers() {
        guard let mallopt = symbol("mallopt", as: Mallopt.self) else { return }
        _ = mallopt(-3, 4 << 20) // M_MMAP_THRESHOLD
        _ = mallopt(-1, 128 << 20) // M_TRIM_THRESHOLD
    }

    /// Returns freed heap memory to the system now (between phases of a long run).
    public static func releaseFreed() { _ = symbol("malloc_trim", as: MallocTrim.self)?(0) }
}
