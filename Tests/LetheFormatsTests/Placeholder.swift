import XCTest
@testable import LetheFormats

final class LetheFormatsTestsPlaceholderTests: XCTestCase {
    func testBuilds() {}
}
