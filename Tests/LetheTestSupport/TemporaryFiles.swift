import Foundation
import XCTest

extension XCTestCase {
    /// The path of a new file holding `contents` in the temporary directory (`name` and a unique
    /// suffix), removed when the test ends.
    public func temporaryFile(_ name: String, contents: Data) throws -> String {
        let path = NSTemporaryDirectory() + "\(name)-\(UUID().uuidString).bin"
        try contents.write(to: URL(fileURLWithPath: path))
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }
}
