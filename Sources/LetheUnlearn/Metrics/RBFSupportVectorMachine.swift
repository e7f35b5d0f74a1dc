import CSVM
import LetheCore

/// A two-class C-SVM with an RBF kernel, trained and evaluated by libsvm itself (the system
/// `libsvm-dev`), the solver scikit-learn's `SVC` wraps, so the membership-inference attacker is
/// `SVC(C=3, gamma='auto')` rather than an approximation of it: the same SMO with shrinking, the same
/// float32 kernel cache, the same stopping tolerance and bias.
public struct RBFSupportVectorMachine: Sendable {
    public let c: Double
    public let gamma: Double
    public let tolerance: Double
    private let model: LibSVMModel
    /// The class libsvm maps to +1 (the smaller label, as scikit-learn orders classes).
    let positiveLabel: Int
    let negativeLabel: Int

    public var supportVectorCount: Int { Int(model.pointer.pointee.l) }

    /// Trains on `features` (one row per sample, equal lengths) with labels in exactly two classes.
    /// `gamma` nil means 1 / number of features (scikit-learn's `gamma='auto'`).
    public init(
        features: [[Double]], labels: [Int], c: Double = 3, gamma: Double? = nil, tolerance: Double = 1e-3,
        cacheMegabytes: Int = 200
    ) throws {
        guard !features.isEmpty, features.count == labels.count else {
            throw UsageError("an SVM needs as many labels as samples, and at least one sample")
        }
        let width = features[0].count
        guard width > 0, features.allSatisfy({ $0.count == width && $0.allSatisfy(\.isFinite) }) else {
            throw UsageError("SVM features must be finite rows of equal length")
        }
        guard features.count <= Int(Int32.max) / (width + 1) else {
            throw UsageError("an SVM of \(features.count) samples of \(width) features is more than libsvm indexes")
        }
        let classes = Array(Set(labels)).sorted()
        guard classes.count == 2 else { throw UsageError("an SVM needs exactly two classes, found \(classes.count)") }
        self.c = c
        self.gamma = gamma ?? 1 / Double(width)
        self.tolerance = tolerance
        positiveLabel = classes[0]
        negativeLabel = classes[1]
        // libsvm puts +1 first when the labels are ±1, so the smaller label is its first class, as in
        // scikit-learn (which orders classes); the order decides the solver's path, not just a sign.
        let y = labels.map { $0 == classes[0] ? 1.0 : -1.0 }
        model = try LibSVMModel(
            features: features, y: y, c: c, gamma: self.gamma, tolerance: tolerance,
            cacheMegabytes: Double(cacheMegabytes))
    }

    /// `Σ y_i α_i K(x_i, x) − ρ`; positive means the smaller label.
    public func decisionValue(_ x: [Double]) -> Double {
        model.decisionValue(x)
    }

    public func predict(_ x: [Double]) -> Int {
        decisionValue(x) > 0 ? positiveLabel : negativeLabel
    }
}

/// Owns a trained `svm_model` and the training nodes its support vectors point into.
///
/// Sendable because it is immutable after training and libsvm's prediction only reads the model.
private final class LibSVMModel: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<svm_model>
    /// Every training row as libsvm nodes (`1…width`, then the `-1` terminator); the model's
    /// support vectors are pointers into it, so it lives as long as the model.
    private let nodes: UnsafeMutableBufferPointer<svm_node>
    private let width: Int

    init(features: [[Double]], y: [Double], c: Double, gamma: Double, tolerance: Double, cacheMegabytes: Double) throws
    {
        _ = LibSVMModel.silenceOnce
        width = features[0].count
        let stride = width + 1
        nodes = .allocate(capacity: features.count * stride)
        for (row, values) in features.enumerated() {
            LibSVMModel.fill(nodes.baseAddress! + row * stride, values)
        }
        let rows = UnsafeMutableBufferPointer<UnsafeMutablePointer<svm_node>?>.allocate(capacity: features.count)
        defer { rows.deallocate() }
        for row in 0..<features.count { rows[row] = nodes.baseAddress! + row * stride }
        var labels = y
        // scikit-learn's `SVC` defaults besides C and gamma: tol 1e-3, cache 200 MB, shrinking, no probabilities.
        // Every feature is given, zeros included, so the kernel sums the same terms in the same order as
        // scikit-learn's dense libsvm.
        var parameter = svm_parameter(
            svm_type: Int32(C_SVC), kernel_type: Int32(RBF), degree: 3, gamma: gamma,
            coef0: 0, cache_size: cacheMegabytes, eps: tolerance, C: c, nr_weight: 0,
            weight_label: nil, weight: nil, nu: 0.5, p: 0.1, shrinking: 1, probability: 0)
        let trained: UnsafeMutablePointer<svm_model>? = labels.withUnsafeMutableBufferPointer { labelBuffer in
            var problem = svm_problem(l: Int32(features.count), y: labelBuffer.baseAddress, x: rows.baseAddress)
            return withUnsafePointer(to: &problem) { problem in
                withUnsafePointer(to: &parameter) { parameter in
                    svm_check_parameter(problem, parameter) == nil ? svm_train(problem, parameter) : nil
                }
            }
        }
        guard let trained else {
            nodes.deallocate()
            throw UsageError("libsvm refused the SVM parameters (C \(c), gamma \(gamma), tolerance \(tolerance))")
        }
        pointer = trained
    }

    deinit {
        var model: UnsafeMutablePointer<svm_model>? = pointer
        svm_free_and_destroy_model(&model)
        nodes.deallocate()
    }

    func decisionValue(_ x: [Double]) -> Double {
        precondition(x.count == width, "an SVM trained on \(width) features asked about \(x.count)")
        var query = [svm_node](repeating: svm_node(index: -1, value: 0), count: width + 1)
        var decision = 0.0
        query.withUnsafeMutableBufferPointer { query in
            LibSVMModel.fill(query.baseAddress!, x)
            _ = svm_predict_values(pointer, query.baseAddress, &decision)
        }
        return decision
    }

    /// Writes `values` as nodes `1…count` and the terminator.
    private static func fill(_ target: UnsafeMutablePointer<svm_node>, _ values: [Double]) {
        for (k, value) in values.enumerated() { target[k] = svm_node(index: Int32(k + 1), value: value) }
        target[values.count] = svm_node(index: -1, value: 0)
    }

    /// libsvm reports its progress on stdout, which `lethe … --json` owns; it is silenced once, process-wide.
    private static let silenceOnce: Void = svm_set_print_string_function { _ in }
}
