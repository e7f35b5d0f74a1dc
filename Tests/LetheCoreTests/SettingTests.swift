import LetheCore
import XCTest

/// Library messages name settings through `Setting`, spelled the way the front end says.
final class SettingTests: XCTestCase {
    func testMessagesSpellSettingsAsTheFrontEndSays() throws {
        let input = NSTemporaryDirectory() + "lethe-setting-\(UUID().uuidString)"
        XCTAssertTrue(FileManager.default.createFile(atPath: input, contents: Data([1])))
        defer { try? FileManager.default.removeItem(atPath: input) }
        func refusal() -> String {
            do {
                try OutputPath.refuseOverwritingInput(input, inputs: [input])
                return "not refused"
            } catch {
                return "\(error)"
            }
        }
        // Without a front end, by the Swift parameter's name.
        XCTAssertTrue(refusal().hasSuffix("(write elsewhere, or pass inPlace)"), refusal())
        Setting.spell { "--" + $0.rawValue.lowercased() }
        defer { Setting.spell { $0.rawValue } }
        XCTAssertTrue(refusal().hasSuffix("(write elsewhere, or pass --inplace)"), refusal())
        XCTAssertEqual("\(Setting.graph)", "--graph")
    }
}
