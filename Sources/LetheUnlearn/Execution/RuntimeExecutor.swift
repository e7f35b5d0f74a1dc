import LetheCore
import LetheIR

/// Runs models on Lethe's interpreter (LetheRuntime).
enum RuntimeExecutor {
    static func factory(threads: Int?) -> ModelExecutorFactory {
        { _ in throw UsageError("Lethe's interpreter is not available in this build") }
    }
}
