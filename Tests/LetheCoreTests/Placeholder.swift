import XCTest
@testable import LetheCore

final class LetheCoreTestsPlaceholderTests: XCTestCase {
    func testBuilds() {}
}
