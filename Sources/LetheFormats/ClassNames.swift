import Foundation
import LetheCore
import LetheIR

/// The names of a classifier's outputs, in output order (name `i` is class id `i`).
public struct ClassNames: Sendable, Equatable {
    public var names: [String]

    public init(_ names: [String]) { self.names = names }

    /// Reads a labels file: one name per line in the model's output order; surrounding spaces and
    /// trailing empty lines are ignored, an empty or repeated name is an error (it could not be told apart).
    public static func load(_ path: String) throws -> ClassNames {
        try FileError.wrapping(path) {
            let file = try MappedFile(path: path)
            guard let text = String(bytes: file.bytes, encoding: .utf8) else {
                throw UsageError("labels file is not UTF-8 text")
            }
            var lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
                .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            while lines.last?.isEmpty == true { lines.removeLast() }
            return try validated(lines, source: "line")
        }
    }

    /// `metadata_props` keys that carry class names, as exporters commonly write them.
    public static let metadataKeys = ["labels", "class_names", "classes", "names", "class_labels"]

    /// The names a model carries in its metadata: the first entry named in `metadataKeys` holding a
    /// JSON list of names, a JSON map from id to name, a Python dict literal of the same (as
    /// Ultralytics exports write `names`), or one name per line. nil when there is none.
    public static func fromMetadata(_ metadata: [(key: String, value: String)]) throws -> ClassNames? {
        guard let entry = metadata.first(where: { metadataKeys.contains($0.key.lowercased()) }) else { return nil }
        let context = "model metadata '\(entry.key)'"
        if let json = try? JSONSerialization.jsonObject(with: Data(entry.value.utf8)) {
            if let list = json as? [String] { return try validated(list, source: context) }
            if let map = json as? [String: Any] {
                var byID: [Int: String] = [:]
                for (key, value) in map {
                    guard let id = Int(key), id >= 0, id < ClassificationLimits.maxClasses, let name = value as? String
                    else {
                        throw UsageError("\(context): expected a map from class ids to names, found key '\(key)'")
                    }
                    byID[id] = name
                }
                let count = (byID.keys.max() ?? -1) + 1
                guard byID.count == count else {
                    throw UsageError("\(context): class ids must run 0…\(count - 1) without gaps")
                }
                return try validated((0..<count).map { byID[$0]! }, source: context)
            }
            throw UsageError("\(context): expected a list of names or a map from ids to names")
        }
        if entry.value.hasPrefix("{") {
            return try validated(try pythonDict(entry.value, context: context), source: context)
        }
        let lines = entry.value.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        return try validated(lines, source: context)
    }

    /// `{0: 'person', 1: "bicycle"}`: ids 0, 1, … in order, names quoted with ' or ".
    private static func pythonDict(_ text: String, context: String) throws -> [String] {
        let pattern = try NSRegularExpression(pattern: #"(\d+)\s*:\s*(?:'([^']*)'|"([^"]*)")"#)
        let matches = pattern.matches(in: text, range: NSRange(text.startIndex..., in: text))
        var names: [String] = []
        for (expected, match) in matches.enumerated() {
            guard let idRange = Range(match.range(at: 1), in: text), Int(text[idRange]) == expected else {
                throw UsageError("\(context): class ids must run 0, 1, 2, … in order")
            }
            let quoted = Range(match.range(at: 2), in: text) ?? Range(match.range(at: 3), in: text)
            names.append(quoted.map { String(text[$0]) } ?? "")
        }
        guard !names.isEmpty else { throw UsageError("\(context): expected a map from class ids to names") }
        return names
    }

    private static func validated(_ names: [String], source: String) throws -> ClassNames {
        guard !names.isEmpty else { throw UsageError("no class names") }
        var seen: [String: Int] = [:]
        for (index, name) in names.enumerated() {
            guard !name.isEmpty else { throw UsageError("class \(index) has an empty name (\(source) \(index + 1))") }
            if let earlier = seen[name] { throw UsageError("'\(name)' names both class \(earlier) and class \(index)") }
            seen[name] = index
        }
        return ClassNames(names)
    }

    /// The class id `name` stands for, or nil.
    public func id(of name: String) -> Int? { names.firstIndex(of: name) }

    /// Class ids from tokens that are ids (`3`) or names (`Dress`); an unknown name is an error
    /// listing the known ones. Without names only ids are accepted.
    public static func resolve(_ tokens: [String], names: ClassNames?, flag: String) throws -> [Int] {
        try tokens.map { token in
            if let id = Int(token), id >= 0 {
                if let names, id >= names.names.count {
                    throw UsageError("\(flag): class \(id) is past the \(names.names.count) named classes")
                }
                return id
            }
            guard let names else {
                throw UsageError(
                    "\(flag): '\(token)' is not a class id, and no class names are known (give \(Setting.labels) FILE)")
            }
            guard let id = names.id(of: token) else {
                throw UsageError(
                    "\(flag): unknown class '\(token)'; known classes: \(names.names.joined(separator: ", "))")
            }
            return id
        }
    }
}

/// Bounds on class counts read from files, checked before anything is sized by them.
public enum ClassificationLimits {
    public static let maxClasses = 1_000_000
}
