import Synchronization

/// A choice the library's caller makes: which graph to pair weights with, which dtype to convert
/// to, how to preprocess images, whether to replace an input. Messages name these through
/// `Setting` instead of spelling one front end's syntax; a front end says once how it spells
/// them (`lethe` spells each as its flag, so its messages read as they always have).
public enum Setting: String, Sendable, CaseIterable, CustomStringConvertible {
    case graph, dtype, mean, std, resize, crop, labels, inPlace
    case method, passes, positions, rows, layers, samples, alreadyForgotten

    /// How messages name a setting.
    public typealias Spelling = @Sendable (Setting) -> String

    /// By default a setting is named by the matching Swift parameter (`graph`, `inPlace`, …).
    private static let spelling = Mutex<Spelling>({ $0.rawValue })

    /// Sets how messages name settings, for the whole process: call it once, before any work,
    /// since messages spell settings when they are made.
    public static func spell(with spelling: @escaping Spelling) {
        self.spelling.withLock { $0 = spelling }
    }

    /// The setting as messages name it.
    public var description: String { Self.spelling.withLock { $0 }(self) }
}
