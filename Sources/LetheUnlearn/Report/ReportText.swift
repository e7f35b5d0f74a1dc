import Foundation

extension ClassificationMetrics {
    /// Class ids present, ascending.
    public var classIDs: [Int] { perClass.keys.compactMap { Int($0) }.sorted() }

    private func name(_ id: Int) -> String {
        guard let classNames, id >= 0, id < classNames.count else { return "" }
        return classNames[id]
    }

    /// The most frequent mistakes, as "true → predicted: count".
    public func topConfusions(_ limit: Int = 5) -> [(truth: Int, predicted: Int, count: Int)] {
        var pairs: [(Int, Int, Int)] = []
        for (truth, row) in confusion.enumerated() {
            for (predicted, count) in row.enumerated() where predicted != truth && count > 0 {
                pairs.append((truth, predicted, count))
            }
        }
        return pairs.sorted { $0.2 > $1.2 || ($0.2 == $1.2 && ($0.0, $0.1) < ($1.0, $1.1)) }.prefix(limit).map {
            ($0.0, $0.1, $0.2)
        }
    }

    /// Overall and per-class accuracy and the commonest confusions, for `lethe eval`.
    public func renderText() -> String {
        var lines = [String(format: "accuracy  %.2f%%  (%d samples)", accuracy * 100, samples)]
        // Names, when known, take a column as wide as the longest one present.
        let longest = classIDs.map { name($0).count }.max() ?? 0
        let nameWidth = longest == 0 ? 0 : max(longest, 4)
        func padded(_ text: String) -> String {
            nameWidth == 0 ? "" : "  " + text.padding(toLength: nameWidth, withPad: " ", startingAt: 0)
        }
        lines.append("class" + padded("name") + "  accuracy  samples")
        for id in classIDs {
            lines.append(
                String(format: "%5d", id) + padded(name(id))
                    + String(
                        format: "  %7.2f%%  %7d", (perClass[String(id)] ?? 0) * 100, perClassCount[String(id)] ?? 0))
        }
        let confusions = topConfusions()
        if !confusions.isEmpty {
            lines.append(
                "most confused: "
                    + confusions.map { "\(label($0.truth))→\(label($0.predicted)) ×\($0.count)" }.joined(
                        separator: ", "))
        }
        return lines.joined(separator: "\n")
    }
}

extension UnlearningReport {
    /// Before/after accuracy, membership inference, the chosen α and timings, for `lethe unlearn`.
    public func renderText() -> String {
        var lines: [String] = []
        let forget = ClassNaming.list(settings.forgetClasses, classNames)
        lines.append(
            "forget classes \(forget); \(retainSamples) retain and \(forgetSamples) forget samples; \(layers.count) layers patched"
        )
        for skipped in skippedLayers { lines.append("skipped \(skipped.node): \(skipped.reason)") }
        if let erasure {
            lines.append(
                "method erase: \(erasure.erasedLayers.count) layers erased, "
                    + (erasure.readoutWriter.map { "head input erased through \($0), " } ?? "")
                    + "head \(erasure.head) repaired "
                    + String(
                        format: "(ridge %g, margin %g, chosen from %d candidates on %d validation samples: %@)",
                        erasure.chosenRidge, erasure.chosenMargin, erasure.repairGrid.count, validationSamples,
                        erasure.rule))
        } else {
            lines.append(
                String(
                    format: "method published: α_r = %g, α_f = %g%@", chosenAlphaRetain, chosenAlphaForget,
                    grid.isEmpty
                        ? "" : " (chosen from \(grid.count) grid points on \(validationSamples) validation samples)"))
        }
        if let test {
            func percent(_ value: Double?) -> String { value.map { String(format: "%6.2f%%", $0 * 100) } ?? "     —" }
            lines.append("")
            lines.append("                 before    after")
            lines.append(
                "ACC_r (retain)  \(percent(test.before.retainAccuracy))  \(percent(test.after.retainAccuracy))")
            lines.append(
                "ACC_f (forget)  \(percent(test.before.forgetAccuracy))  \(percent(test.after.forgetAccuracy))")
            lines.append("overall         \(percent(test.before.accuracy))  \(percent(test.after.accuracy))")
            if let before = test.membershipBefore, let after = test.membershipAfter {
                lines.append("MIA efficacy    \(percent(before.efficacy))  \(percent(after.efficacy))")
            }
            if let probe = test.probe {
                lines.append("probe recovery  \(percent(probe.before))  \(percent(probe.after))")
            }
            let forgotten = Set(settings.forgetClasses)
            for id in test.before.classIDs {
                let key = String(id)
                lines.append(
                    String(
                        format: "  class %-3d %@ %@  %@", id, forgotten.contains(id) ? "F" : " ",
                        percent(test.before.perClass[key]), percent(test.after.perClass[key]))
                        + (classNames.map { id < $0.count ? "  " + $0[id] : "" } ?? ""))
            }
        }
        lines.append("")
        if erasure != nil {
            lines.append(
                String(
                    format: "time %.2fs (erasure %.2fs, head repair %.2fs, evaluation %.2fs)",
                    timings.total, timings.statistics, timings.search, timings.evaluation))
        } else {
            lines.append(
                String(
                    format:
                        "time %.2fs (statistics %.2fs, eigen %.2fs, search %.2fs, projection %.2fs, evaluation %.2fs)",
                    timings.total, timings.statistics, timings.decomposition, timings.search, timings.projection,
                    timings.evaluation))
        }
        lines.append(contentsOf: notes.map { "note: \($0)" })
        return lines.joined(separator: "\n")
    }
}
