import LetheCore

/// Activation buffers of one plan, reused across its steps and runs.
///
/// When a step releases an intermediate that nothing else holds (no tap kept it, no output shares
/// it), its storage goes back to a free list keyed by byte size, and the next kernel allocating that
/// size takes it instead of calling malloc, whose fresh pages fault on first touch and whose freed
/// large blocks go back to the system. At the end of a run, sizes that run did not use are dropped,
/// so the pool never holds more than one run's own buffers (a smaller last chunk does not pin the
/// full-size set as well). Chunks run side by side share the pool (locked with `Locked`, which
/// ThreadSanitizer understands); sizes are then dropped only when no run is under way, since one
/// run's end would otherwise drop the sizes the other had asked for so far.
final class BufferPool: Sendable {
    private struct State {
        var free: [Int: [TensorStorage]] = [:]
        var sizesThisRun: Set<Int> = []
        var running = 0
    }
    private let state = Locked(State())

    /// The pool of the plan running on this thread (kernels allocate through `Tensor.uninitialized`).
    @TaskLocal static var current: BufferPool?

    /// A buffer of exactly `count` bytes from the free list, if one is there.
    func take(_ count: Int) -> TensorStorage? {
        state.withLock { state in
            state.sizesThisRun.insert(count)
            return state.free[count]?.popLast()
        }
    }

    /// Empties `slot`, taking back its tensor's storage if the slot was the last holder.
    func recycle(_ slot: inout Tensor?) {
        guard var tensor = slot.take(), let storage = tensor.uniquelyHeldAllocation() else { return }
        state.withLock { state in
            state.sizesThisRun.insert(storage.count)
            state.free[storage.count, default: []].append(storage)
        }
    }

    /// Buffers waiting on the free lists.
    var freeCount: Int { state.withLock { $0.free.values.reduce(0) { $0 + $1.count } } }
    /// Byte sizes with a buffer waiting.
    var freeSizes: [Int] { state.withLock { $0.free.filter { !$0.value.isEmpty }.map(\.key) } }

    /// A run starts.
    func beginRun() { state.withLock { $0.running += 1 } }

    /// A run ends: when it was the last under way, the sizes no run asked for since the pool was last
    /// pruned are dropped.
    func endRun() {
        state.withLock { state in
            state.running -= 1
            guard state.running == 0 else { return }
            state.free = state.free.filter { state.sizesThisRun.contains($0.key) }
            state.sizesThisRun = []
        }
    }
}
