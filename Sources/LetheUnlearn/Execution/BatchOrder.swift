import Foundation

/// The batch a model run belongs to, while `forEachBatch` runs batches side by side (see
/// `ModelExecutor.concurrentBatches`), and the turns its taps take.
///
/// A tap that accumulates (a Gram matrix summed in float64, position draws counted image by image)
/// must see the batches in order for its result not to depend on which thread ran first. Such a tap
/// wraps its work in `inTurn`: the body for batch `k` of a given key waits until the body of batch
/// `k − 1` of that key has finished. Other work of the two batches overlaps freely, so two threads
/// that start together settle one tap apart and rarely wait.
struct BatchContext: Sendable {
    /// The batch's index in the pass, from 0.
    let index: Int
    /// Threads the batch's own work may use: 1 while batches run side by side.
    let threads: Int
    let order: BatchOrder

    /// The batch being run on this thread by a concurrent `forEachBatch`; nil otherwise.
    @TaskLocal static var current: BatchContext?

    /// Runs `body` in batch order for `key` when batches run side by side, else at once.
    static func inTurn<Result>(key: Int, _ body: () throws -> Result) throws -> Result {
        guard let context = current else { return try body() }
        try context.order.wait(key: key, batch: context.index)
        defer { context.order.finish(key: key, batch: context.index) }
        return try body()
    }
}

/// Turn-taking per key across the batches of one concurrent pass, and its cancellation: when a batch
/// fails, batches waiting for its turns stop instead of waiting forever.
final class BatchOrder: @unchecked Sendable {
    private let condition = NSCondition()
    /// The next batch allowed into each key's turn.
    private var next: [Int: Int] = [:]
    private var cancelled = false

    /// The pass stopped; waiting batches give up.
    struct Cancelled: Error {}

    func wait(key: Int, batch: Int) throws {
        condition.lock()
        defer { condition.unlock() }
        while !cancelled, next[key, default: 0] != batch { condition.wait() }
        if cancelled { throw Cancelled() }
    }

    func finish(key: Int, batch: Int) {
        condition.lock()
        next[key] = batch + 1
        condition.broadcast()
        condition.unlock()
    }

    func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }
}
