import LetheCore

/// Accuracy of a classifier on labelled samples: overall, per class, on the retain and forget classes,
/// and the confusion matrix.
public struct ClassificationMetrics: Sendable, Codable, Hashable {
    public var samples: Int
    /// Fraction correct over all samples.
    public var accuracy: Double
    /// Accuracy per class present, keyed by class id (as a string, for JSON).
    public var perClass: [String: Double]
    /// Samples per class present.
    public var perClassCount: [String: Int]
    /// `ACC_r`: accuracy over samples of retain classes (nil when there are none).
    public var retainAccuracy: Double?
    /// `ACC_f`: accuracy over samples of forget classes (nil when there are none).
    public var forgetAccuracy: Double?
    /// `confusion[true][predicted]`, square over `max(label, prediction) + 1` classes (empty when labels
    /// run past `maxConfusionClasses`, so a stray label cannot demand a huge table).
    public var confusion: [[Int]]
    /// Names of the classes in output order (class id `i` is `classNames[i]`), when known.
    public var classNames: [String]?

    /// `ignoring`: classes forgotten by earlier runs, counted neither in ACC_r nor in ACC_f.
    public init(labels: [Int], predictions: [Int], forgetClasses: Set<Int>, ignoring: Set<Int> = []) {
        precondition(labels.count == predictions.count)
        let largest = max((labels.max() ?? -1), (predictions.max() ?? -1))
        let classes = largest < ClassificationMetrics.maxConfusionClasses ? largest + 1 : 0
        var confusion = Array(repeating: Array(repeating: 0, count: max(classes, 0)), count: max(classes, 0))
        var correct = 0, retainCorrect = 0, retainTotal = 0, forgetCorrect = 0, forgetTotal = 0
        var classCorrect: [Int: Int] = [:], classTotal: [Int: Int] = [:]
        for (label, prediction) in zip(labels, predictions) {
            let hit = label == prediction
            if label >= 0, prediction >= 0, label < classes, prediction < classes { confusion[label][prediction] += 1 }
            classTotal[label, default: 0] += 1
            if hit { correct += 1; classCorrect[label, default: 0] += 1 }
            if forgetClasses.contains(label) {
                forgetTotal += 1
                if hit { forgetCorrect += 1 }
            } else if !ignoring.contains(label) {
                retainTotal += 1
                if hit { retainCorrect += 1 }
            }
        }
        samples = labels.count
        accuracy = labels.isEmpty ? 0 : Double(correct) / Double(labels.count)
        perClass = Dictionary(
            uniqueKeysWithValues: classTotal.map {
                (String($0.key), Double(classCorrect[$0.key] ?? 0) / Double($0.value))
            })
        perClassCount = Dictionary(uniqueKeysWithValues: classTotal.map { (String($0.key), $0.value) })
        retainAccuracy = retainTotal > 0 ? Double(retainCorrect) / Double(retainTotal) : nil
        forgetAccuracy = forgetTotal > 0 ? Double(forgetCorrect) / Double(forgetTotal) : nil
        self.confusion = confusion
        classNames = nil
    }

    /// "3 Dress" when class 3 has a name, else "3".
    public func label(_ id: Int) -> String { ClassNaming.label(id, classNames) }

    public static let maxConfusionClasses = 4096

    /// `ACC_r · (1 − ACC_f)`, the α search's objective.
    public var searchScore: Double {
        (retainAccuracy ?? 0) * (1 - (forgetAccuracy ?? 0))
    }
}

/// Membership-inference efficacy (DESIGN §4): an RBF SVM (C = 3, γ = 1/features) learns to tell
/// retain-class training samples (members) from test samples (non-members) by the model's probability
/// of the true label, on balanced sets; the score is the share of forget-class training samples it
/// calls non-members (higher = better forgotten).
public enum MembershipInference {
    public struct Result: Sendable, Codable, Hashable {
        /// Share of forget-class training samples predicted non-member.
        public var efficacy: Double
        public var membersUsed: Int
        public var nonMembersUsed: Int
        public var targets: Int
        public var supportVectors: Int
    }

    /// `members`/`nonMembers` are subsampled (seeded) to the size of the smaller set, capped at
    /// `maxPerSide` to bound the SVM's quadratic cost.
    public static func efficacy(
        members: [Double], nonMembers: [Double], targets: [Double], seed: UInt64,
        maxPerSide: Int? = nil
    ) throws -> Result {
        var n = min(members.count, nonMembers.count)
        if let maxPerSide { n = min(n, maxPerSide) }
        guard n > 0, !targets.isEmpty else {
            throw UsageError("membership inference needs member, non-member and forget samples")
        }
        var generator = SplitMix64(seed: SplitMix64.combine(seed, 0x4D49_41))
        let memberSample = Array(members.shuffled(using: &generator).prefix(n))
        let nonMemberSample = Array(nonMembers.shuffled(using: &generator).prefix(n))
        let features = (memberSample + nonMemberSample).map { [$0] }
        let labels = Array(repeating: 1, count: n) + Array(repeating: 0, count: n)
        let svm = try RBFSupportVectorMachine(features: features, labels: labels, c: 3)
        let called = targets.reduce(0) { $0 + (svm.predict([$1]) == 0 ? 1 : 0) }
        return Result(
            efficacy: Double(called) / Double(targets.count), membersUsed: n, nonMembersUsed: n,
            targets: targets.count, supportVectors: svm.supportVectorCount)
    }
}
