import Foundation
import LetheUnlearn

/// Shows the unlearner's phases as progress bars on a terminal.
final class PhaseProgress: @unchecked Sendable {
    private var bar: ProgressBar?
    private var phase = ""
    private let lock = NSLock()

    var callback: UnlearningProgress {
        { [self] phase, done, total in
            lock.lock(); defer { lock.unlock() }
            if phase != self.phase {
                bar?.finish()
                self.phase = phase
                bar = ProgressBar(phase, total: total)
            }
            bar?.update(done)
        }
    }

    func finish() { bar?.finish() }
}
