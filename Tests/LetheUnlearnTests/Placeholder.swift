import XCTest
@testable import LetheUnlearn

final class LetheUnlearnTestsPlaceholderTests: XCTestCase {
    func testBuilds() {}
}
