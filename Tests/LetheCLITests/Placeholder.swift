import XCTest
@testable import LetheFormats

final class LetheCLITestsPlaceholderTests: XCTestCase {
    func testBuilds() {}
}
