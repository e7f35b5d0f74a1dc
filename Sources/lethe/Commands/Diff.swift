import ArgumentParser
import LetheFormats

struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare two checkpoints tensor by tensor, and their graphs.",
        discussion: "Exit code 0 when equal, 1 when different, 2 on error.")

    @Argument(help: "The first checkpoint.")
    var first: String

    @Argument(help: "The second checkpoint.")
    var second: String

    @Option(help: "Relative tolerance: values with |a − b| ≤ atol + rtol·|b| count as equal (as numpy.allclose).")
    var rtol = 0.0

    @Option(help: "Absolute tolerance (see --rtol). Both default to 0: equal means bit for bit.")
    var atol = 0.0

    @Flag(help: "Print one JSON document instead of text.")
    var json = false

    func validate() throws {
        guard rtol >= 0, atol >= 0, rtol.isFinite, atol.isFinite else {
            throw ValidationError("--rtol and --atol must be finite and not negative")
        }
    }

    func run() throws {
        let diff = CheckpointDiff(
            try Checkpoint.open(first).model, try Checkpoint.open(second).model,
            tolerance: .init(relative: rtol, absolute: atol))
        if json { try Terminal.printJSON(diff) } else { print(diff.render(firstName: first, secondName: second)) }
        if !diff.isEqual { throw ExitCode(1) }
    }
}
