import XCTest
@testable import LetheSafetensors

final class LetheSafetensorsTestsPlaceholderTests: XCTestCase {
    func testBuilds() {}
}
