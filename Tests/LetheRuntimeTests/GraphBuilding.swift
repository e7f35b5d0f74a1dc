import LetheCore
import LetheIR
import LetheTestSupport
import XCTest
@testable import LetheRuntime

/// Small helpers to build single-purpose graphs by hand.
struct GraphBuilder {
    var nodes: [Node] = []
    var inputs: [ValueInfo] = []
    var initializers: [Initializer] = []
    var outputs: [ValueInfo] = []
    var opset = 17

    mutating func input(_ name: String, _ shape: [Int?], dtype: DType = .float32) {
        inputs.append(
            ValueInfo(name: name, dtype: dtype, shape: shape.map { $0.map(Dimension.fixed) ?? .symbolic("batch") }))
    }
    mutating func constant(_ name: String, _ tensor: Tensor) {
        initializers.append(Initializer(name: name, tensor: tensor))
    }
    mutating func node(
        _ op: String, _ inputs: [String], _ outputs: [String], name: String? = nil,
        _ attributes: [(String, Attribute)] = []
    ) {
        nodes.append(
            Node(
                name: name ?? "\(op)_\(nodes.count)", opType: op, inputs: inputs, outputs: outputs,
                attributes: attributes.map { (name: $0.0, value: $0.1) }))
    }
    /// A graph output; with a `shape` (nil dims free), one a session may run in chunks.
    mutating func output(_ name: String, _ shape: [Int?]? = nil) {
        outputs.append(
            ValueInfo(name: name, shape: shape.map { $0.map { $0.map(Dimension.fixed) ?? .symbolic("batch") } }))
    }

    var model: Model {
        Model(
            graph: Graph(nodes: nodes, inputs: inputs, outputs: outputs, initializers: initializers),
            irVersion: 8, opsets: [("", opset)])
    }
}

/// Deterministic pseudo-random floats in [-1, 1).
func randomFloats(_ count: Int, seed: UInt64) -> [Float] {
    var state = seed &* 6364136223846793005 &+ 1442695040888963407
    return (0..<count).map { _ in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Float(Int64(bitPattern: state >> 11) % 2_000_000) / 1_000_000 - 1
    }
}

func randomTensor(_ shape: [Int], seed: UInt64) -> Tensor {
    Tensor(shape: shape, values: randomFloats(shape.reduce(1, *), seed: seed))
}

/// max |a − b| / max |b|, the agreement measure the runtime promises against ONNX Runtime.
func relativeError(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "\(a.count) vs \(b.count) values")
    var diff: Float = 0, scale: Float = 0
    for i in a.indices {
        diff = max(diff, abs(a[i] - b[i]))
        scale = max(scale, abs(b[i]))
    }
    return scale == 0 ? diff : diff / scale
}

func assertClose(
    _ a: Tensor, _ b: [Float], shape: [Int]? = nil, tolerance: Float = 1e-5,
    file: StaticString = #filePath, line: UInt = #line
) {
    if let shape { XCTAssertEqual(a.shape, shape, file: file, line: line) }
    XCTAssertEqual(a.elementCount, b.count, file: file, line: line)
    guard a.elementCount == b.count else { return }
    XCTAssertLessThanOrEqual(relativeError(a.floatValues(), b), tolerance, file: file, line: line)
}

/// Reference convolution by definition (NCHW, explicit pads), for checking the fast kernels.
func naiveConv(
    _ x: Tensor, _ w: Tensor, _ b: [Float]?, stride: [Int], pads: [Int], dilation: [Int], group: Int
) -> (values: [Float], shape: [Int]) {
    let xs = x.shape, ws = w.shape
    let (n, c, h, wd) = (xs[0], xs[1], xs[2], xs[3])
    let (m, cg, kh, kw) = (ws[0], ws[1], ws[2], ws[3])
    let oh = (h + pads[0] + pads[2] - ((kh - 1) * dilation[0] + 1)) / stride[0] + 1
    let ow = (wd + pads[1] + pads[3] - ((kw - 1) * dilation[1] + 1)) / stride[1] + 1
    let xv = x.floatValues(), wv = w.floatValues()
    var out = [Float](repeating: 0, count: n * m * oh * ow)
    let mg = m / group
    for image in 0..<n {
        for oc in 0..<m {
            let g = oc / mg
            for y in 0..<oh {
                for z in 0..<ow {
                    var sum: Double = Double(b?[oc] ?? 0)
                    for ic in 0..<cg {
                        for i in 0..<kh {
                            for j in 0..<kw {
                                let iy = y * stride[0] - pads[0] + i * dilation[0]
                                let ix = z * stride[1] - pads[1] + j * dilation[1]
                                guard iy >= 0, iy < h, ix >= 0, ix < wd else { continue }
                                sum +=
                                    Double(xv[((image * c + g * cg + ic) * h + iy) * wd + ix])
                                    * Double(wv[((oc * cg + ic) * kh + i) * kw + j])
                            }
                        }
                    }
                    out[((image * m + oc) * oh + y) * ow + z] = Float(sum)
                }
            }
        }
    }
    return (out, [n, m, oh, ow])
}

/// Package root, from this file's location.
var packageRoot: String { TestEnvironment.packageRoot }
