import XCTest
@testable import LetheRuntime

final class LetheRuntimeTestsPlaceholderTests: XCTestCase {
    func testBuilds() {}
}
