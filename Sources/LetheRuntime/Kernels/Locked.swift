#if canImport(Glibc)
import Glibc
#endif

/// A value behind a pthread mutex, for state that threads really contend for.
///
/// `Synchronization.Mutex` is built on raw futexes on Linux, which ThreadSanitizer cannot see, so
/// every contended access through it is reported as a race; pthread mutexes are intercepted and
/// understood, which keeps the TSan run in CI meaningful.
final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    /// Runs `body` with the value while holding the lock.
    func withLock<Result, Failure: Error>(_ body: (inout Value) throws(Failure) -> Result) throws(Failure) -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
