import Foundation

/// Renders an `UnlearningReport` as one self-contained HTML page: inline CSS and SVG, no scripts,
/// nothing fetched from the network.
public enum ReportHTML {
    public static func render(_ report: UnlearningReport, title: String = "Lethe unlearning report") -> String {
        var html = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>\(escape(title))</title>
            <style>
            body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
            h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ddd}
            table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
            th{background:#f4f4f4}td.l,th.l{text-align:left}.note{background:#fff6dd;padding:.5em 1em;border-left:4px solid #e0a800}
            svg text{font:11px system-ui,sans-serif}.spectra{display:flex;flex-wrap:wrap;gap:12px}
            </style></head><body>
            <h1>\(escape(title))</h1>
            """
        html += settingsSection(report)
        for note in report.notes { html += "<p class=\"note\">\(escape(note))</p>\n" }
        if let test = report.test { html += metricsSection(test, names: report.classNames) }
        if !report.grid.isEmpty { html += gridSection(report) }
        if let erasure = report.erasure { html += erasureSection(erasure) }
        html += layersSection(report)
        html += "</body></html>\n"
        return html
    }

    private static func settingsSection(_ report: UnlearningReport) -> String {
        let s = report.settings
        let t = report.timings
        let rows: [(String, String)] = [
            ("forget classes", ClassNaming.list(s.forgetClasses, report.classNames)),
            (
                "already forgotten",
                s.alreadyForgotten.isEmpty ? "—" : ClassNaming.list(s.alreadyForgotten, report.classNames)
            ),
            (
                "samples (retain / forget / validation)",
                "\(report.retainSamples) / \(report.forgetSamples) / \(report.validationSamples)"
            ),
            ("method", report.method),
            report.erasure == nil
                ? (
                    "α retain, α forget",
                    "\(number(report.chosenAlphaRetain)), \(number(report.chosenAlphaForget))"
                        + (s.search ? " (searched)" : "")
                )
                : (
                    "head repair (ridge, margin)",
                    "\(number(report.erasure!.chosenRidge)), \(number(report.erasure!.chosenMargin))"
                ),
            ("positions per image", s.positionCap.map(String.init) ?? "all"),
            (
                "rows per layer and side",
                s.rowBudget.map { "about \($0) (at most ⌈rows ÷ images⌉ positions per image)" } ?? "no budget"
            ),
            ("seed", String(s.seed)),
            (
                "layers projected",
                String(report.layers.count)
                    + (report.skippedLayers.isEmpty ? "" : " (\(report.skippedLayers.count) skipped)")
            ),
            ("statistics", s.statisticsLoaded ? "loaded from file" : "collected"),
            ("passes", s.passes == 1 ? "1 (the published method)" : "\(s.passes), each on the previous pass's model"),
            (
                "time (s): statistics / eigen / search / projection / evaluation / total",
                [t.statistics, t.decomposition, t.search, t.projection, t.evaluation, t.total].map {
                    String(format: "%.2f", $0)
                }.joined(separator: " / ")
            )
        ]
        return "<h2>Settings</h2>\n<table>"
            + rows.map { "<tr><th class=\"l\">\(escape($0.0))</th><td class=\"l\">\(escape($0.1))</td></tr>" }.joined()
            + "</table>\n"
    }

    private static func metricsSection(_ test: UnlearningReport.Evaluation, names: [String]?) -> String {
        func pct(_ value: Double?) -> String { value.map { String(format: "%.2f%%", $0 * 100) } ?? "—" }
        var html = "<h2>Test set</h2>\n<table><tr><th></th><th>before</th><th>after</th></tr>"
        html +=
            "<tr><th class=\"l\">accuracy</th><td>\(pct(test.before.accuracy))</td><td>\(pct(test.after.accuracy))</td></tr>"
        html +=
            "<tr><th class=\"l\">ACC<sub>r</sub> (retain classes)</th><td>\(pct(test.before.retainAccuracy))</td><td>\(pct(test.after.retainAccuracy))</td></tr>"
        html +=
            "<tr><th class=\"l\">ACC<sub>f</sub> (forget classes)</th><td>\(pct(test.before.forgetAccuracy))</td><td>\(pct(test.after.forgetAccuracy))</td></tr>"
        html +=
            "<tr><th class=\"l\">membership-inference efficacy</th><td>\(pct(test.membershipBefore?.efficacy))</td><td>\(pct(test.membershipAfter?.efficacy))</td></tr>"
        if let probe = test.probe {
            html +=
                "<tr><th class=\"l\">probe recovery (linear probe on the penultimate features)</th><td>\(pct(probe.before))</td><td>\(pct(probe.after))</td></tr>"
        }
        html += "</table>\n"
        html += perClassChart(before: test.before, after: test.after, names: names)
        return html
    }

    /// The erasure method's choices: the depths tried and the head-repair candidates, on the validation split.
    private static func erasureSection(_ erasure: UnlearningReport.Erasure) -> String {
        func pct(_ value: Double?) -> String { value.map { String(format: "%.2f%%", $0 * 100) } ?? "—" }
        var html =
            "<h2>Erasure</h2>\n<p>Rule: \(escape(erasure.rule)); an erasure depth is kept when its validation ACC<sub>r</sub> "
        html += "reaches the original model's (\(pct(erasure.originalValidationRetainAccuracy))). Erased: "
        html +=
            erasure.erasedLayers.isEmpty
            ? "none (head repair only)" : escape(erasure.erasedLayers.joined(separator: ", "))
        html +=
            "; head: \(escape(erasure.head)).</p>\n<table><tr><th>depth</th><th class=\"l\">left alone (retain distortion)</th><th>validation ACC<sub>r</sub></th><th>validation ACC<sub>f</sub></th></tr>"
        for point in erasure.depths {
            let skipped = point.skipped.map { "\($0.layer) (\(String(format: "%.1f%%", $0.distortion * 100)))" }.joined(
                separator: ", ")
            html +=
                "<tr><td>\(point.depth)</td><td class=\"l\">\(escape(skipped.isEmpty ? "—" : skipped))</td><td>\(pct(point.retainAccuracy))</td><td>\(pct(point.forgetAccuracy))</td></tr>"
        }
        html +=
            "</table>\n<table><tr><th>ridge</th><th>margin</th><th>validation ACC<sub>r</sub></th><th>validation ACC<sub>f</sub></th></tr>"
        for point in erasure.repairGrid {
            let chosen = point.ridge == erasure.chosenRidge && point.margin == erasure.chosenMargin
            html +=
                "<tr\(chosen ? " style=\"font-weight:bold\"" : "")><td>\(number(point.ridge))</td><td>\(number(point.margin))</td><td>\(pct(point.retainAccuracy))</td><td>\(pct(point.forgetAccuracy))</td></tr>"
        }
        return html + "</table>\n"
    }

    /// Grouped bars: per-class accuracy before (grey) and after (blue).
    private static func perClassChart(
        before: ClassificationMetrics, after: ClassificationMetrics, names: [String]?
    ) -> String {
        let classes = Set(before.perClass.keys).union(after.perClass.keys).compactMap(Int.init).sorted()
        guard !classes.isEmpty else { return "" }
        let slot = 44.0, height = 180.0, left = 40.0, top = 10.0
        let width = left + slot * Double(classes.count) + 10
        var svg =
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height + 50))\" role=\"img\" aria-label=\"per-class accuracy\">"
        for tick in stride(from: 0.0, through: 1.0, by: 0.25) {
            let y = top + height * (1 - tick)
            svg +=
                "<line x1=\"\(left)\" x2=\"\(width - 10)\" y1=\"\(y)\" y2=\"\(y)\" stroke=\"#eee\"/><text x=\"\(left - 4)\" y=\"\(y + 4)\" text-anchor=\"end\">\(Int(tick * 100))%</text>"
        }
        for (index, label) in classes.enumerated() {
            let x = left + slot * Double(index) + 6
            for (offset, metrics, color) in [(0.0, before, "#aaa"), (16.0, after, "#2b6cb0")] {
                let value = metrics.perClass[String(label)] ?? 0
                let h = height * value
                svg +=
                    "<rect x=\"\(x + offset)\" y=\"\(top + height - h)\" width=\"15\" height=\"\(h)\" fill=\"\(color)\"><title>class \(escape(ClassNaming.label(label, names))): \(String(format: "%.1f%%", value * 100))</title></rect>"
            }
            svg += "<text x=\"\(x + 15)\" y=\"\(top + height + 14)\" text-anchor=\"middle\">\(label)</text>"
        }
        svg +=
            "<rect x=\"\(left)\" y=\"\(top + height + 26)\" width=\"10\" height=\"10\" fill=\"#aaa\"/><text x=\"\(left + 14)\" y=\"\(top + height + 35)\">before</text>"
        svg +=
            "<rect x=\"\(left + 70)\" y=\"\(top + height + 26)\" width=\"10\" height=\"10\" fill=\"#2b6cb0\"/><text x=\"\(left + 84)\" y=\"\(top + height + 35)\">after</text>"
        svg += "</svg>\n"
        if names != nil { svg += "<p>classes: \(escape(ClassNaming.list(classes, names)))</p>\n" }
        return "<h3>Per-class accuracy</h3>\n" + svg
    }

    /// Heat map of the search score over the α grid; the chosen cell is outlined.
    private static func gridSection(_ report: UnlearningReport) -> String {
        let retains = Array(Set(report.grid.map(\.alphaRetain))).sorted()
        let forgets = Array(Set(report.grid.map(\.alphaForget))).sorted()
        let cell = 64.0, left = 70.0, top = 30.0
        var svg =
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(left + cell * Double(forgets.count) + 10))\" height=\"\(Int(top + cell * Double(retains.count) + 10))\" role=\"img\" aria-label=\"alpha grid\">"
        svg += "<text x=\"\(left)\" y=\"12\">α forget →</text><text x=\"4\" y=\"\(top - 6)\">α retain ↓</text>"
        for (column, af) in forgets.enumerated() {
            svg +=
                "<text x=\"\(left + cell * (Double(column) + 0.5))\" y=\"\(top - 6)\" text-anchor=\"middle\">\(number(af))</text>"
        }
        for (row, ar) in retains.enumerated() {
            let y = top + cell * Double(row)
            svg += "<text x=\"\(left - 6)\" y=\"\(y + cell / 2 + 4)\" text-anchor=\"end\">\(number(ar))</text>"
            for (column, af) in forgets.enumerated() {
                guard let point = report.grid.first(where: { $0.alphaRetain == ar && $0.alphaForget == af }) else {
                    continue
                }
                let x = left + cell * Double(column)
                let chosen = ar == report.chosenAlphaRetain && af == report.chosenAlphaForget
                svg +=
                    "<rect x=\"\(x)\" y=\"\(y)\" width=\"\(cell - 2)\" height=\"\(cell - 2)\" fill=\"\(heat(point.score))\"\(chosen ? " stroke=\"#000\" stroke-width=\"3\"" : "")>"
                svg +=
                    "<title>α_r \(number(ar)), α_f \(number(af)): ACC_r \(percent(point.retainAccuracy)), ACC_f \(percent(point.forgetAccuracy))</title></rect>"
                svg +=
                    "<text x=\"\(x + cell / 2 - 1)\" y=\"\(y + cell / 2 + 4)\" text-anchor=\"middle\">\(String(format: "%.3f", point.score))</text>"
            }
        }
        return "<h2>α search (validation ACC<sub>r</sub>·(1 − ACC<sub>f</sub>))</h2>\n" + svg + "</svg>\n"
    }

    /// Per layer: the leading normalised eigenvalues of the retain (blue) and forget (red) statistics, log scale.
    private static func layersSection(_ report: UnlearningReport) -> String {
        var html =
            "<h2>Layers</h2>\n<table><tr><th class=\"l\">weight</th><th class=\"l\">op</th><th>shape</th><th>d</th><th>rows r / f</th><th>rank99 r / f</th><th>‖ΔW‖/‖W‖</th></tr>"
        for layer in report.layers {
            html +=
                "<tr><td class=\"l\">\(escape(layer.name))</td><td class=\"l\">\(escape(layer.kind))\(layer.groups > 1 ? " g\(layer.groups)" : "")</td>"
            html += "<td>\(layer.shape.map(String.init).joined(separator: "×"))</td><td>\(layer.inputDimension)</td>"
            html +=
                "<td>\(layer.retainRows) / \(layer.forgetRows)</td><td>\(layer.retainRank99) / \(layer.forgetRank99)</td>"
            html += "<td>\(String(format: "%.4f", layer.relativeChange))</td></tr>"
        }
        html += "</table>\n"
        if !report.skippedLayers.isEmpty {
            html +=
                "<p>Not projected: "
                + report.skippedLayers.map { "\(escape($0.node)) (\(escape($0.reason)))" }.joined(separator: "; ")
                + "</p>\n"
        }
        html += "<h3>Spectra (leading s<sub>i</sub>, log scale; blue retain, red forget)</h3>\n<div class=\"spectra\">"
        for layer in report.layers { html += spectrumChart(layer) }
        return html + "</div>\n"
    }

    private static func spectrumChart(_ layer: UnlearningReport.Layer) -> String {
        let width = 240.0, height = 120.0, top = 16.0
        let floor = -8.0
        func y(_ value: Double) -> Double {
            let exponent = max(log10(max(value, 1e-300)), floor)
            return top + height * (exponent / floor)
        }
        func path(_ values: [Double], color: String) -> String {
            guard !values.isEmpty else { return "" }
            let step = width / Double(max(LayerSummaryBuilder.spectrumLength - 1, 1))
            let points = values.enumerated().map {
                String(format: "%.1f,%.1f", Double($0.offset) * step, y($0.element))
            }.joined(separator: " ")
            return "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" points=\"\(points)\"/>"
        }
        var svg =
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width + 10))\" height=\"\(Int(height + top + 8))\" role=\"img\" aria-label=\"spectrum \(escape(layer.name))\">"
        svg +=
            "<text x=\"0\" y=\"11\">\(escape(layer.name))</text><rect x=\"0\" y=\"\(top)\" width=\"\(width)\" height=\"\(height)\" fill=\"none\" stroke=\"#ddd\"/>"
        svg += path(layer.retainSpectrum, color: "#2b6cb0") + path(layer.forgetSpectrum, color: "#c53030")
        return svg + "</svg>"
    }

    private static func heat(_ score: Double) -> String {
        let t = min(max(score, 0), 1)
        let r = Int(255 - 200 * t), g = Int(245 - 90 * t), b = Int(235 - 60 * t)
        return "rgb(\(r),\(g),\(b))"
    }

    private static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }

    private static func percent(_ value: Double?) -> String {
        value.map { String(format: "%.1f%%", $0 * 100) } ?? "—"
    }

    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }
}
