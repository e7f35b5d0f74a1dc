import XCTest
import LetheCore
@testable import LetheIR

final class TopologicalOrderTests: XCTestCase {
    func testOrdersOutOfOrderNodesAndRejectsCycles() throws {
        var graph = Graph(
            nodes: [
                Node(name: "b", opType: "Relu", inputs: ["h"], outputs: ["y"]),
                Node(name: "a", opType: "Neg", inputs: ["x"], outputs: ["h"])
            ], inputs: [ValueInfo(name: "x")], outputs: [ValueInfo(name: "y")])
        XCTAssertEqual(try graph.topologicalOrder(), [1, 0])
        graph.nodes[1].inputs = ["y"]
        XCTAssertThrowsError(try graph.topologicalOrder())
        graph.nodes[1].inputs = ["missing"]
        XCTAssertThrowsError(try graph.topologicalOrder()) { error in
            XCTAssertTrue("\(error)".contains("'missing'"))
        }
    }
}
