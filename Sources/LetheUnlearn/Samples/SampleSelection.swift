import LetheCore

/// Which training samples feed the statistics and which are held out for the α search (DESIGN §4).
///
/// - Validation (only when searching): the last `validationPerClass` samples of every class in file
///   order (at most a tenth of the class), never used for statistics, so the search is judged on data
///   the statistics did not see — and never on the test set.
/// - Retain: the first `S / (number of retain classes)` remaining samples of each retain class; classes
///   being forgotten now or earlier (`alreadyForgotten`) are never retain classes.
/// - Forget: `S` remaining samples of the forget classes (all of them if fewer), an equal share per
///   class, each class's first in file order.
///
/// File order makes the choice repeatable without a seed; shuffle the data file to choose differently.
public struct SampleSelection: Sendable {
    public var retain: [Int]
    public var forget: [Int]
    public var validation: [Int]
    public var retainClasses: [Int]

    public init(
        labels: [Int], forgetClasses: Set<Int>, alreadyForgotten: Set<Int> = [], samples: Int = 900,
        validationPerClass: Int = 0
    ) throws {
        guard samples > 0 else { throw UsageError("\(Setting.samples) must be positive") }
        let classes = Array(Set(labels)).sorted()
        let missing = forgetClasses.subtracting(classes)
        guard missing.isEmpty else {
            throw UsageError(
                "forget class(es) \(missing.sorted().map(String.init).joined(separator: ", ")) have no samples in the data"
            )
        }
        var byClass: [Int: [Int]] = [:]
        for (index, label) in labels.enumerated() { byClass[label, default: []].append(index) }

        var validation: [Int] = []
        if validationPerClass > 0 {
            for label in classes {
                let members = byClass[label]!
                let held = min(validationPerClass, members.count / 10)
                guard held > 0 else { continue }
                validation += members.suffix(held)
                byClass[label] = Array(members.dropLast(held))
            }
        }

        let excluded = forgetClasses.union(alreadyForgotten)
        let retainClasses = classes.filter { !excluded.contains($0) }
        guard !retainClasses.isEmpty else { throw UsageError("no class is left to retain") }
        let perClass = max(1, samples / retainClasses.count)
        retain = retainClasses.flatMap { (byClass[$0] ?? []).prefix(perClass) }
        // Per forget class, an equal share of S in file order, so that a class-sorted file cannot leave
        // one class out; a class with fewer samples gives its unused share to the classes after it.
        var forget: [Int] = []
        var remaining = samples
        let sortedForget = forgetClasses.sorted()
        for (position, label) in sortedForget.enumerated() {
            let share = remaining / (sortedForget.count - position)
            let taken = Array((byClass[label] ?? []).prefix(share))
            forget += taken
            remaining -= taken.count
        }
        self.forget = forget.sorted()
        self.validation = validation.sorted()
        self.retainClasses = retainClasses
    }
}
