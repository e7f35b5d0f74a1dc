#if canImport(Glibc)
import Glibc
#endif

/// Wall time per operator type, summed over every plan run of the process, printed to standard
/// error at exit when `LETHE_PROFILE` is set (per node when it is `nodes`): how to see which nodes a
/// fusion removed and what the rest cost, without a profiler.
final class StepProfile: Sendable {
    static let shared: StepProfile? = getenv("LETHE_PROFILE") == nil ? nil : StepProfile()
    /// Whether steps are told apart by node name rather than by operator type.
    static let byNode: Bool = getenv("LETHE_PROFILE").map { String(cString: $0) == "nodes" } ?? false

    private struct Totals {
        var seconds: [String: Double] = [:]
        var calls: [String: Int] = [:]
    }
    private let totals = Locked(Totals())

    private init() {
        atexit { StepProfile.shared?.report() }
    }

    static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }

    func record(_ opType: String, seconds: Double) {
        totals.withLock { totals in
            totals.seconds[opType, default: 0] += seconds
            totals.calls[opType, default: 0] += 1
        }
    }

    private func report() {
        totals.withLock { totals in
            let all = totals.seconds.values.reduce(0, +)
            for (op, seconds) in totals.seconds.sorted(by: { $0.value > $1.value }) {
                let share = 100 * seconds / max(all, 1e-12)
                let line =
                    "\(op)\t\(totals.calls[op] ?? 0) calls\t\(Int(seconds * 1e6)) µs\t\(Int(share.rounded())) %\n"
                _ = line.withCString { write(2, $0, strlen($0)) }
            }
        }
    }
}
