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

    @Flag(help: "Print one JSON document instead of text.")
    var json = false

    func run() throws {
        let diff = CheckpointDiff(try Checkpoint.open(first).model, try Checkpoint.open(second).model)
        if json { try Terminal.printJSON(diff) } else { print(diff.render(firstName: first, secondName: second)) }
        if !diff.isEqual { throw ExitCode(1) }
    }
}
