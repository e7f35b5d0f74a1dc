import CBLAS
#if canImport(Glibc)
import Glibc
#endif

/// The one owner of the C libraries' thread settings, so the GEMM and convolution wrappers agree.
///
/// oneDNN threads with OpenMP, whose idle workers spin for milliseconds after each parallel region
/// and compete with the runtime's own threads; OpenBLAS has a pool of its own. Both are kept to the
/// calling thread, and the wrappers split work across the runtime's threads themselves.
public enum LibraryThreads {
    private typealias SetThreads = @convention(c) (Int32) -> Void
    private static let setOpenMPThreads: SetThreads? = {
        // oneDNN's ITT tracing hooks cost a few percent on the many small calls; the library reads
        // this variable when it first runs, which is after this point.
        setenv("DNNL_ITT_TASK_LEVEL", "0", 0)
        // libgomp is only an indirect dependency (through libdnnl), so its symbol is found at run time.
        guard let symbol = dlsym(nil, "omp_set_num_threads") else { return nil }
        return unsafeBitCast(symbol, to: SetThreads.self)
    }()

    /// OpenMP's thread count for parallel regions the calling thread starts (a per-thread setting),
    /// which is what oneDNN sizes its work split on, both when a primitive is created and when run.
    static func useOpenMP(threads: Int) {
        setOpenMPThreads?(Int32(max(1, threads)))
    }

    /// OpenBLAS runs single-threaded: the runtime parallelises around it.
    static let openBLASSingleThreaded: Void = {
        openblas_set_num_threads(1)
    }()

    /// Sets OpenBLAS to one thread if nothing has yet, for callers that split work across threads
    /// themselves. Without it, a model whose kernels never call OpenBLAS (every product in oneDNN)
    /// left it at its default of every core, and two such callers at once ran four threads on two
    /// cores (ResNet-18 224² statistics over 1,000 images: 113 s, and 78 s once set).
    public static func keepOpenBLASSingleThreaded() {
        _ = openBLASSingleThreaded
    }

    /// Runs `body` with OpenBLAS allowed `threads` threads, and leaves it at one after.
    ///
    /// For linear algebra between model steps (statistics reductions, solves), when no kernel is
    /// running: OpenBLAS's thread count is one setting for the whole process, and the runtime's
    /// kernels call it from their own workers, where it must stay single-threaded. Before this, a
    /// caller's `openblas_set_num_threads(N)` was undone by the runtime's first product, so which
    /// won depended on call order.
    public static func withOpenBLAS<Result>(threads: Int, _ body: () throws -> Result) rethrows -> Result {
        _ = openBLASSingleThreaded
        guard threads > 1 else { return try body() }
        openblas_set_num_threads(Int32(threads))
        defer { openblas_set_num_threads(1) }
        return try body()
    }
}
