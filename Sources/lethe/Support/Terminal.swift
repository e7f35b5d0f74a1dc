import Foundation

/// Where output goes: results on stdout, progress and diagnostics on stderr.
enum Terminal {
    static func error(_ message: String) {
        FileHandle.standardError.write(Data("lethe: \(message)\n".utf8))
    }

    static func note(_ message: String) {
        FileHandle.standardError.write(Data("\(message)\n".utf8))
    }

    /// Prints `value` as one pretty JSON document on stdout.
    static func printJSON<T: Encodable>(_ value: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        print(String(decoding: try encoder.encode(value), as: UTF8.self))
    }

    static let isInteractive = isatty(STDERR_FILENO) != 0
}

/// A one-line progress bar on stderr, shown only on a terminal.
final class ProgressBar: @unchecked Sendable {
    private let label: String
    private let total: Int
    private var lastDrawn = -1
    private let lock = NSLock()

    init(_ label: String, total: Int) {
        self.label = label
        self.total = max(total, 1)
    }

    func update(_ done: Int) {
        guard Terminal.isInteractive else { return }
        lock.lock(); defer { lock.unlock() }
        let percent = min(100, done * 100 / total)
        guard percent != lastDrawn else { return }
        lastDrawn = percent
        let width = 30
        let filled = percent * width / 100
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        FileHandle.standardError.write(Data("\r\(label) \(bar) \(percent)%".utf8))
    }

    func finish() {
        guard Terminal.isInteractive, lastDrawn >= 0 else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8))
    }
}
