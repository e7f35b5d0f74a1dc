import LetheCore
import XCTest
@testable import LetheIR

/// The graph's own facts: execution order, what is an input at run time, parameter counts.
final class GraphTests: XCTestCase {
    private func node(_ name: String, _ inputs: [String], _ outputs: [String]) -> Node {
        Node(name: name, opType: "Add", inputs: inputs, outputs: outputs)
    }

    func testTopologicalOrderKeepsFileOrderWhereItWorks() throws {
        let weight = Initializer(name: "w", tensor: Tensor(shape: [1], values: [Float(1)]))
        // c reads b, which is listed after it; a and d are already in order.
        let graph = Graph(
            nodes: [
                node("a", ["x", "w"], ["a"]), node("c", ["b"], ["c"]), node("b", ["a"], ["b"]),
                node("d", ["c", ""], ["d"])
            ],
            inputs: [ValueInfo(name: "x")], initializers: [weight])
        XCTAssertEqual(try graph.topologicalOrder(), [0, 2, 1, 3])
        let inOrder = Graph(nodes: [node("a", ["x"], ["a"]), node("b", ["a"], ["b"])], inputs: [ValueInfo(name: "x")])
        XCTAssertEqual(try inOrder.topologicalOrder(), [0, 1])
        // Values of an enclosing graph count as available (subgraph bodies).
        let body = Graph(nodes: [node("e", ["outer"], ["e"])])
        XCTAssertEqual(try body.topologicalOrder(outerScope: ["outer"]), [0])
    }

    func testTopologicalOrderRefusesCyclesMissingValuesAndTwoProducers() {
        let cycle = Graph(nodes: [node("a", ["b"], ["a"]), node("b", ["a"], ["b"])])
        XCTAssertThrowsError(try cycle.topologicalOrder()) { XCTAssertTrue("\($0)".contains("cycle"), "\($0)") }
        let missing = Graph(nodes: [Node(opType: "Relu", inputs: ["nowhere"], outputs: ["y"])])
        XCTAssertThrowsError(try missing.topologicalOrder()) {
            XCTAssertEqual("\($0)", "node #0 (Relu) reads 'nowhere', which nothing produces")
        }
        let twice = Graph(nodes: [node("a", [], ["v"]), node("b", [], ["v"])])
        XCTAssertThrowsError(try twice.topologicalOrder()) {
            XCTAssertEqual("\($0)", "value 'v' is produced by more than one node")
        }
    }

    func testRuntimeInputsLeaveOutInitializersAndCountParameters() {
        let graph = Graph(
            inputs: [ValueInfo(name: "x"), ValueInfo(name: "w")],
            initializers: [
                Initializer(name: "w", tensor: Tensor(zeros: .float32, shape: [2, 3])),
                Initializer(name: "shape", tensor: Tensor(shape: [2], values: [Int64(1), -1])),
                Initializer(name: "h", tensor: Tensor(zeros: .float16, shape: [4]))
            ])
        XCTAssertEqual(graph.runtimeInputs.map(\.name), ["x"])
        // Floating-point weights count; integer shape constants do not.
        XCTAssertEqual(graph.parameterCount, 6 + 4)
        XCTAssertEqual(graph.initializer(named: "shape")?.int64Values(), [1, -1])
        XCTAssertNil(graph.initializer(named: "absent"))
    }

    func testAttributesReadTheirKinds() {
        XCTAssertEqual(Attribute.int(3).intValue, 3)
        XCTAssertEqual(Attribute.int(3).floatValue, 3)
        XCTAssertNil(Attribute.float(1.5).intValue)
        XCTAssertEqual(Attribute.string(Array("abc".utf8)).stringValue, "abc")
        XCTAssertEqual(Attribute.ints([1, 2]).kindName, "INTS")
        XCTAssertEqual(Attribute.opaque(kind: "SPARSE_TENSOR").kindName, "SPARSE_TENSOR")
        XCTAssertEqual(Dimension.symbolic("batch").description, "batch")
        XCTAssertEqual(Dimension.fixed(4).fixedValue, 4)
        XCTAssertNil(Dimension.unknown.fixedValue)
    }
}
