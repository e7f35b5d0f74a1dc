import XCTest
@testable import LetheNumPy

final class LetheNumPyTestsPlaceholderTests: XCTestCase {
    func testBuilds() {}
}
