import Foundation
import LetheCore

/// A folder whose subfolders are the classes, listed the way torchvision's `ImageFolder` lists it:
/// class folders in code-point order, and within each the files of every nested folder, folders
/// in path order and files in name order. Hidden entries (starting with ".") are left out.
public struct ImageFolder: Sendable {
    public struct Entry: Sendable, Equatable {
        public var path: String
        public var label: Int
    }

    public var root: String
    public var entries: [Entry]
    /// Names of the model's classes: the labels given, or else the class folders in sorted order.
    public var classNames: ClassNames
    /// Class folders (sorted) and the class id each maps to.
    public var folders: [(name: String, label: Int)]

    /// Deepest nesting followed inside a class folder (guards against symbolic-link loops).
    static let maxDepth = 32

    /// Whether `path` is a directory (following symbolic links).
    public static func isFolder(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    /// Lists `root`. With `names`, a folder is matched to the class of that name (or a folder named
    /// by a class id to that id); without, folders map to 0, 1, … in sorted order.
    public static func scan(_ root: String, names: ClassNames?) throws -> ImageFolder {
        try FileError.wrapping(root) {
            let folderNames = try visible(root).filter { isFolder(root + "/" + $0) }
            guard !folderNames.isEmpty else { throw UsageError("no class folders (expected one subfolder per class)") }
            let classNames = names ?? ClassNames(folderNames)
            var folders: [(name: String, label: Int)] = []
            for name in folderNames {
                guard let id = try classID(ofFolder: name, in: classNames) else {
                    throw UsageError(
                        "folder '\(name)' is not a class name; known classes: \(classNames.names.joined(separator: ", "))"
                    )
                }
                folders.append((name, id))
            }
            var entries: [Entry] = []
            for folder in folders {
                for path in try files(in: root + "/" + folder.name, depth: 0) {
                    entries.append(Entry(path: path, label: folder.label))
                }
            }
            guard !entries.isEmpty else { throw UsageError("the class folders hold no files") }
            return ImageFolder(root: root, entries: entries, classNames: classNames, folders: folders)
        }
    }

    /// The class a folder stands for: the class of that exact name; else the class whose name, with
    /// its "/" written as "_", "-" or " " (a folder name cannot hold "/"), is the folder's, when
    /// exactly one is; else the class id the folder is named by.
    static func classID(ofFolder name: String, in classNames: ClassNames) throws -> Int? {
        if let id = classNames.id(of: name) { return id }
        let spelled = classNames.names.indices.filter { id in
            let className = classNames.names[id]
            return className.contains("/")
                && ["_", "-", " "].contains { className.replacingOccurrences(of: "/", with: $0) == name }
        }
        if spelled.count > 1 {
            throw UsageError(
                "folder '\(name)' could stand for \(spelled.map { classNames.names[$0] }.joined(separator: " or "))")
        }
        if let id = spelled.first { return id }
        if let id = Int(name), id >= 0, id < classNames.names.count { return id }
        return nil
    }

    /// Names in `folder` that do not start with ".", in code-point order (Python's `sorted`).
    static func visible(_ folder: String) throws -> [String] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: folder)
        } catch {
            throw FileError(path: folder, underlying: UsageError("cannot list the folder"))
        }
        return names.filter { !$0.hasPrefix(".") }
            .sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }
    }

    /// The files under `folder` in `sorted(os.walk(folder))` order: folders by full path, each
    /// folder's own files by name.
    static func files(in folder: String, depth: Int) throws -> [String] {
        var walked: [(folder: String, files: [String])] = []
        try walk(folder, depth: depth, into: &walked)
        return walked.sorted { $0.folder.unicodeScalars.lexicographicallyPrecedes($1.folder.unicodeScalars) }
            .flatMap(\.files)
    }

    private static func walk(
        _ folder: String, depth: Int, into walked: inout [(folder: String, files: [String])]
    ) throws {
        guard depth <= maxDepth else {
            throw FileError(
                path: folder, underlying: UsageError("folders nest deeper than \(maxDepth) levels (a link loop?)"))
        }
        var own: [String] = []
        for name in try visible(folder) {
            let path = folder + "/" + name
            if isFolder(path) { try walk(path, depth: depth + 1, into: &walked) } else { own.append(path) }
        }
        walked.append((folder, own))
    }
}
