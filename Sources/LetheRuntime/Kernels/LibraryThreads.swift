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

    /// OpenBLAS runs single-threaded: the runtime parallelises around it. Its workers, started when
    /// the library loads, are stopped (see `stopOpenBLASWorkers`).
    static let openBLASSingleThreaded: Void = {
        openblas_set_num_threads(1)
        stopOpenBLASWorkers(force: true)
    }()

    private typealias Shutdown = @convention(c) () -> Int32
    /// OpenBLAS's own call for stopping its workers (not in its headers); it starts them again by
    /// itself when it next runs a product on more than one thread.
    private static let shutdownOpenBLASWorkers: Shutdown? = dlsym(nil, "blas_thread_shutdown_").map {
        unsafeBitCast($0, to: Shutdown.self)
    }
    /// `withOpenBLAS` bodies running now, and whether one may have started OpenBLAS's workers since
    /// they were last stopped. Stopping them while a threaded product is under way would take its
    /// workers from it, so the two wait on each other here (a `Locked`, which ThreadSanitizer sees:
    /// runs side by side reach it at once).
    private struct WorkerState {
        var running = 0
        var started = false
    }
    private static let workers = Locked(WorkerState())

    /// Stops OpenBLAS's workers if `withOpenBLAS` may have started them and no body of it is running.
    /// After their last product they spin on `sched_yield` for about 0.1 s of CPU before they sleep,
    /// which on two cores takes one from the runtime's kernels (the sample CNN's forget pass after
    /// the retain side's solves; at load, the whole first 0.1 s of a run). Model runs call it before
    /// their kernels start.
    public static func stopOpenBLASWorkers() {
        stopOpenBLASWorkers(force: false)
    }

    private static func stopOpenBLASWorkers(force: Bool) {
        workers.withLock { state in
            guard state.running == 0, state.started || force else { return }
            state.started = false
            _ = shutdownOpenBLASWorkers?()
        }
    }

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
        workers.withLock { state in
            state.running += 1
            state.started = true
        }
        openblas_set_num_threads(Int32(threads))
        defer {
            openblas_set_num_threads(1)
            workers.withLock { $0.running -= 1 }
        }
        return try body()
    }
}
