import XCTest
import LetheCore
import LetheFormats

/// Class names from labels files and model metadata, and --forget tokens resolved through them.
final class ClassNamesTests: XCTestCase {
    private func temporaryFile(_ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "lethe-labels-\(UUID().uuidString).txt"
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    func testLabelsFileOneNamePerLine() throws {
        XCTAssertEqual(
            try ClassNames.load(try temporaryFile("T-shirt/top\n Trouser \r\nDress\n\n")).names,
            ["T-shirt/top", "Trouser", "Dress"])
        XCTAssertThrowsError(try ClassNames.load(try temporaryFile("a\n\nb\n"))) {
            XCTAssertTrue("\($0)".contains("class 1 has an empty name"), "\($0)")
        }
        XCTAssertThrowsError(try ClassNames.load(try temporaryFile("a\nb\na\n"))) {
            XCTAssertTrue("\($0)".contains("'a' names both class 0 and class 2"), "\($0)")
        }
        XCTAssertThrowsError(try ClassNames.load("/nonexistent/labels.txt")) {
            XCTAssertTrue("\($0)".hasPrefix("/nonexistent/labels.txt: "), "\($0)")
        }
    }

    func testMetadataListMapOrLines() throws {
        XCTAssertNil(try ClassNames.fromMetadata([("producer", "x")]))
        XCTAssertEqual(try ClassNames.fromMetadata([("labels", #"["cat","dog"]"#)])?.names, ["cat", "dog"])
        XCTAssertEqual(try ClassNames.fromMetadata([("classes", #"{"1":"dog","0":"cat"}"#)])?.names, ["cat", "dog"])
        XCTAssertEqual(try ClassNames.fromMetadata([("class_names", "cat\ndog")])?.names, ["cat", "dog"])
        XCTAssertEqual(
            try ClassNames.fromMetadata([("names", #"{0: 'person', 1: "bi, cycle"}"#)])?.names, ["person", "bi, cycle"])
        XCTAssertThrowsError(try ClassNames.fromMetadata([("names", "{1: 'person'}")]))
        XCTAssertThrowsError(try ClassNames.fromMetadata([("labels", #"{"0":"cat","2":"dog"}"#)])) {
            XCTAssertTrue("\($0)".contains("without gaps"), "\($0)")
        }
        XCTAssertThrowsError(try ClassNames.fromMetadata([("labels", #"{"x":"cat"}"#)]))
    }

    func testResolveTakesNamesOrIdsAndListsTheKnownOnes() throws {
        let names = ClassNames(["T-shirt/top", "Trouser", "Dress"])
        XCTAssertEqual(try ClassNames.resolve(["Dress", "1"], names: names, flag: "--forget"), [2, 1])
        XCTAssertEqual(try ClassNames.resolve(["2"], names: nil, flag: "--forget"), [2])
        XCTAssertThrowsError(try ClassNames.resolve(["Coat"], names: names, flag: "--forget")) {
            XCTAssertEqual("\($0)", "--forget: unknown class 'Coat'; known classes: T-shirt/top, Trouser, Dress")
        }
        XCTAssertThrowsError(try ClassNames.resolve(["7"], names: names, flag: "--forget")) {
            XCTAssertTrue("\($0)".contains("past the 3 named classes"), "\($0)")
        }
        XCTAssertThrowsError(try ClassNames.resolve(["Dress"], names: nil, flag: "--forget")) {
            XCTAssertTrue("\($0)".contains("no class names are known"), "\($0)")
        }
    }

    func testFolderOrderFollowsSortedOsWalk() throws {
        let root = NSTemporaryDirectory() + "lethe-folder-\(UUID().uuidString)"
        // Python: sorted(os.walk(...)) orders folders by path, so "a b" (space < "/") comes before "a/x",
        // and code points put "B" before "a"; hidden entries are left out.
        for path in ["B/1.png", "a/2.png", "a/a b/3.png", "a/x/4.png", "a/.hidden/5.png", "a/.6.png", "a/10.png"] {
            let full = root + "/" + path
            try FileManager.default.createDirectory(
                atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data().write(to: URL(fileURLWithPath: full))
        }
        let folder = try ImageFolder.scan(root, names: nil)
        XCTAssertEqual(folder.classNames.names, ["B", "a"])
        XCTAssertEqual(
            folder.entries.map { String($0.path.dropFirst(root.count + 1)) },
            ["B/1.png", "a/10.png", "a/2.png", "a/a b/3.png", "a/x/4.png"])
        XCTAssertEqual(folder.entries.map(\.label), [0, 1, 1, 1, 1])

        let named = try ImageFolder.scan(root, names: ClassNames(["a", "zero", "B"]))
        XCTAssertEqual(named.entries.map(\.label), [2, 0, 0, 0, 0])
        XCTAssertThrowsError(try ImageFolder.scan(root, names: ClassNames(["a"]))) {
            XCTAssertTrue("\($0)".contains("folder 'B' is not a class name; known classes: a"), "\($0)")
        }
    }

    func testANameWithASlashMatchesItsFolderSpeltOtherwise() throws {
        let root = NSTemporaryDirectory() + "lethe-slash-\(UUID().uuidString)"
        for path in ["T-shirt_top/1.png", "Trouser/2.png", "x y z/3.png", "1/4.png"] {
            let full = root + "/" + path
            try FileManager.default.createDirectory(
                atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data().write(to: URL(fileURLWithPath: full))
        }
        let folder = try ImageFolder.scan(root, names: ClassNames(["T-shirt/top", "Trouser", "x/y z"]))
        // "1" is no name, so it stands for class 1 (folders sort as "1", "T-shirt_top", "Trouser", "x y z").
        XCTAssertEqual(folder.entries.map(\.label), [1, 0, 1, 2])
        XCTAssertThrowsError(
            try ImageFolder.scan(root, names: ClassNames(["T-shirt/top", "Trouser", "x/y z", "x y/z"]))
        ) {
            XCTAssertTrue("\($0)".contains("folder 'x y z' could stand for x/y z or x y/z"), "\($0)")
        }
    }
}
