import ArgumentParser
import LetheCore
import LetheRuntime
#if canImport(Glibc)
import Glibc
#endif

/// The `lethe` command: class unlearning and checkpoint patching for exported classifiers.
struct Lethe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lethe",
        abstract: "Forget classes from trained classifiers, and inspect, convert and patch their checkpoints.",
        discussion: "Exit codes: 0 success, 1 a difference or failed check you asked for, 2 bad input or usage.",
        version: "0.1.0",
        subcommands: [Inspect.self, Convert.self, Run.self, Eval.self, Unlearn.self, Stats.self, Diff.self]
    )
}

@main
enum LetheMain {
    static func main() {
        // Library messages name settings; here they are the flags.
        Setting.spell { $0.flag }
        HeapPolicy.returnLargeBuffers()
        LibraryThreads.keepOpenBLASSingleThreaded()
        do {
            var command = try Lethe.parseAsRoot()
            try command.run()
        } catch let code as ExitCode {
            exit(code.rawValue)
        } catch let error as any LetheError {
            Terminal.error("\(error)")
            exit(2)
        } catch {
            if Lethe.exitCode(for: error) == .success { Lethe.exit(withError: error) }
            let message = Lethe.fullMessage(for: error)
            Terminal.error(message.isEmpty ? "\(error)" : message)
            exit(2)
        }
    }
}
