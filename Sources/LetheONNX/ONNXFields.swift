/// Field numbers of the ONNX messages Lethe reads and rewrites on the wire (`formats/onnx/onnx.proto`),
/// by message: the same number means different things in different messages (5 is a graph's
/// initializer, a node's attribute and an attribute's tensor).
enum ONNXField {
    enum Model {
        static let graph = 7
    }

    enum Graph {
        static let node = 1
        static let initializer = 5
    }

    enum Node {
        static let attribute = 5
    }

    enum Attribute {
        static let tensor = 5
        static let graph = 6
        static let tensors = 10
        static let graphs = 11
    }

    enum Tensor {
        static let floatData = 4
        static let int32Data = 5
        static let int64Data = 7
        static let rawData = 9
        static let doubleData = 10
        static let uint64Data = 11
    }
}
