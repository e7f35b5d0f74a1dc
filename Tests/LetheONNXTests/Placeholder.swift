import XCTest
@testable import LetheONNX

final class LetheONNXTestsPlaceholderTests: XCTestCase {
    func testBuilds() {}
}
