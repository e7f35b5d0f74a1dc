import Dispatch
import LetheCore
#if canImport(Glibc)
import Glibc
#endif

/// Splits loops over the session's threads.
enum Parallel {
    /// Runs `body` on disjoint chunks covering `0..<count`, on up to `threads` threads, giving each
    /// chunk at least `grain` iterations so small loops stay on the calling thread.
    static func forEach(_ count: Int, threads: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let chunks = min(max(1, threads), max(1, count / max(1, grain)))
        if chunks <= 1 {
            body(0..<count)
            return
        }
        withoutActuallyEscaping(body) { body in
            // The chunks touch disjoint ranges; callers guarantee their captures are safe to share.
            let shared = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                let lower = count * chunk / chunks
                let upper = count * (chunk + 1) / chunks
                if lower < upper { shared.value(lower..<upper) }
            }
        }
    }

    /// Number of worker threads to use when `requested` is nil: every core.
    static var defaultThreads: Int { max(1, ProcessInfoCores.count) }
}

enum ProcessInfoCores {
    static let count: Int = {
        let n = sysconf(Int32(_SC_NPROCESSORS_ONLN))
        return n > 0 ? n : 1
    }()
}
