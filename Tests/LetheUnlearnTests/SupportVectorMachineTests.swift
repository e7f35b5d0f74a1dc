import Foundation
import LetheCore
import XCTest
@testable import LetheUnlearn

final class SupportVectorMachineTests: XCTestCase {
    /// Feature sets shaped like the attack's: "probability of the true label" for members (mostly near 1)
    /// and non-members (more spread), plus a plain two-blob case and a 2-feature case.
    private func featureSets() -> [(name: String, features: [[Double]], labels: [Int], queries: [[Double]])] {
        var sets: [(String, [[Double]], [Int], [[Double]])] = []
        var generator = SplitMix64(seed: 2024)
        func uniform() -> Double { Double(generator.next() >> 11) / Double(1 << 53) }
        for (index, (memberSpread, nonMemberSpread, n)) in [(0.05, 0.4, 150), (0.2, 0.3, 200), (0.01, 0.9, 120)]
            .enumerated()
        {
            var features: [[Double]] = [], labels: [Int] = []
            for _ in 0..<n { features.append([1 - memberSpread * pow(uniform(), 2) * 3]); labels.append(1) }
            for _ in 0..<n { features.append([1 - nonMemberSpread * uniform() * 2]); labels.append(0) }
            // Saturated probabilities repeat exactly, as softmax outputs do.
            for i in stride(from: 0, to: n, by: 7) { features[i] = [1] }
            let queries = (0..<300).map { _ in [uniform() * 2 - 0.3] }
            sets.append(("probability-\(index)", features, labels, queries))
        }
        var features: [[Double]] = [], labels: [Int] = []
        for i in 0..<160 {
            let positive = i % 2 == 0
            features.append([uniform() + (positive ? 0.6 : 0), uniform() - (positive ? 0.3 : 0)])
            labels.append(positive ? 1 : 0)
        }
        sets.append(
            ("two-features", features, labels, (0..<300).map { _ in [uniform() * 2 - 0.5, uniform() * 2 - 0.8] }))
        // The attack's full size (600 a side, overlapping classes: many bounded vectors, shrinking at
        // work), with the smaller label first this time, since libsvm orders classes by first sight.
        features = []
        labels = []
        for i in 0..<1200 {
            let member = i % 3 == 1
            features.append([member ? 1 - 0.3 * pow(uniform(), 3) : 1 - 0.6 * uniform()])
            labels.append(member ? 1 : 0)
        }
        sets.append(("attack-size", features, labels, (0..<300).map { _ in [uniform() * 1.2 - 0.1] }))
        return sets
    }

    func testPredictionsAgreeWithScikitLearn() throws {
        let python = try TestSupport.requirePython()
        let script = """
            import json, sys
            from sklearn.svm import SVC
            data = json.load(sys.stdin)
            out = []
            for s in data:
                clf = SVC(C=3, gamma='auto', kernel='rbf').fit(s['x'], s['y'])
                out.append({'pred': clf.predict(s['q']).tolist(), 'dec': (-clf.decision_function(s['q'])).tolist(),
                            'nsv': int(clf.support_.shape[0])})
            print(json.dumps(out))
            """
        let sets = featureSets()
        let payload = sets.map {
            ["x": $0.features, "y": $0.labels.map { [Double($0)] }.map { $0[0] }, "q": $0.queries] as [String: Any]
        }
        let input = String(decoding: try JSONSerialization.data(withJSONObject: payload), as: UTF8.self)
        let output = try TestSupport.runPython(python, script: script, input: input)
        let reference = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [[String: Any]])
        XCTAssertEqual(reference.count, sets.count)
        for (set, expected) in zip(sets, reference) {
            let svm = try RBFSupportVectorMachine(features: set.features, labels: set.labels, c: 3)
            let sklearnPredictions = try XCTUnwrap(expected["pred"] as? [Double]).map { Int($0) }
            let sklearnDecisions = try XCTUnwrap(expected["dec"] as? [Double])
            // The same libsvm solver on the same data: every prediction and the support-vector count agree exactly.
            let ours = set.queries.map { svm.predict($0) }
            let disagreements = zip(ours, sklearnPredictions).filter { $0 != $1 }.count
            XCTAssertEqual(disagreements, 0, "\(set.name): \(disagreements)/\(ours.count) predictions differ")
            XCTAssertEqual(svm.supportVectorCount, try XCTUnwrap(expected["nsv"] as? Int), set.name)
            // libsvm's decision value has class 0 positive; scikit-learn flips it, the script flips it back.
            // Equal up to the rounding of the kernel's dot product (scikit-learn calls BLAS for it): ~2e-15 here.
            let decisions = set.queries.map { svm.decisionValue($0) }
            XCTAssertLessThan(TestSupport.maxAbsDifference(decisions, sklearnDecisions), 1e-12, set.name)
        }
    }

    func testSeparableBlobsAreSeparated() throws {
        let features = [[0.0], [0.1], [0.2], [0.9], [1.0], [1.1]]
        let labels = [0, 0, 0, 1, 1, 1]
        let svm = try RBFSupportVectorMachine(features: features, labels: labels, c: 3)
        XCTAssertEqual(features.map { svm.predict($0) }, labels)
        XCTAssertEqual(svm.predict([-0.5]), 0)
        XCTAssertEqual(svm.predict([1.6]), 1)
        XCTAssertThrowsError(try RBFSupportVectorMachine(features: [[0], [1]], labels: [1, 1]))
        XCTAssertThrowsError(try RBFSupportVectorMachine(features: [[0], [.nan]], labels: [0, 1]))
    }

    func testMembershipEfficacyCountsNonMemberCalls() throws {
        // Members sit near 1, non-members near 0.3: targets near 0.3 are all called non-members.
        let members = (0..<60).map { 0.95 + Double($0 % 5) * 0.01 }
        let nonMembers = (0..<80).map { 0.25 + Double($0 % 10) * 0.01 }
        let forgotten = try MembershipInference.efficacy(
            members: members, nonMembers: nonMembers, targets: [0.3, 0.28, 0.31, 0.27], seed: 1)
        XCTAssertEqual(forgotten.efficacy, 1)
        XCTAssertEqual(forgotten.membersUsed, 60)
        XCTAssertEqual(forgotten.nonMembersUsed, 60)
        let remembered = try MembershipInference.efficacy(
            members: members, nonMembers: nonMembers, targets: [0.97, 0.99, 0.3], seed: 1)
        XCTAssertEqual(remembered.efficacy, 1.0 / 3.0, accuracy: 1e-12)
    }
}
