import Foundation

/// A two-class C-SVM with an RBF kernel, trained by SMO exactly as libsvm (and so scikit-learn's
/// `SVC`) trains it: second-order working-set selection (Fan, Chen & Lin 2005), kernel columns cached
/// as float32, stopping tolerance 1e-3, the bias from the free support vectors. No shrinking: it only
/// changes the path, not the optimum within tolerance.
public struct RBFSupportVectorMachine: Sendable {
    public let c: Double
    public let gamma: Double
    public let tolerance: Double
    let supportVectors: [[Double]]
    /// `y_i α_i` of each support vector.
    let coefficients: [Double]
    let rho: Double
    /// The class libsvm maps to +1 (the smaller label, as scikit-learn orders classes).
    let positiveLabel: Int
    let negativeLabel: Int
    public let iterations: Int

    public var supportVectorCount: Int { supportVectors.count }

    /// Trains on `features` (one row per sample, equal lengths) with labels in exactly two classes.
    /// `gamma` nil means 1 / number of features (scikit-learn's `gamma='auto'`).
    public init(features: [[Double]], labels: [Int], c: Double = 3, gamma: Double? = nil, tolerance: Double = 1e-3,
                cacheMegabytes: Int = 200) throws {
        guard !features.isEmpty, features.count == labels.count else {
            throw UsageError("an SVM needs as many labels as samples, and at least one sample")
        }
        let width = features[0].count
        guard width > 0, features.allSatisfy({ $0.count == width && $0.allSatisfy(\.isFinite) }) else {
            throw UsageError("SVM features must be finite rows of equal length")
        }
        let classes = Array(Set(labels)).sorted()
        guard classes.count == 2 else { throw UsageError("an SVM needs exactly two classes, found \(classes.count)") }
        self.c = c
        self.gamma = gamma ?? 1 / Double(width)
        self.tolerance = tolerance
        positiveLabel = classes[0]
        negativeLabel = classes[1]

        let y = labels.map { $0 == classes[0] ? 1.0 : -1.0 }
        var solver = SMOSolver(features: features, y: y, c: c, gamma: self.gamma, tolerance: tolerance,
                               cacheBytes: cacheMegabytes << 20)
        solver.solve()
        iterations = solver.iterations
        var vectors: [[Double]] = []
        var coefficients: [Double] = []
        for i in 0..<features.count where solver.alpha[i] > 0 {
            vectors.append(features[i])
            coefficients.append(y[i] * solver.alpha[i])
        }
        supportVectors = vectors
        self.coefficients = coefficients
        rho = solver.rho()
    }

    /// `Σ y_i α_i K(x_i, x) − ρ`; positive means the smaller label.
    public func decisionValue(_ x: [Double]) -> Double {
        var sum = 0.0
        let xx = x.reduce(0) { $0 + $1 * $1 }
        for (index, vector) in supportVectors.enumerated() {
            sum += coefficients[index] * RBFSupportVectorMachine.kernel(vector, x, xx: xx, gamma: gamma)
        }
        return sum - rho
    }

    public func predict(_ x: [Double]) -> Int {
        decisionValue(x) > 0 ? positiveLabel : negativeLabel
    }

    /// libsvm's form, `exp(−γ(‖a‖² + ‖b‖² − 2a·b))`, so rounding matches it.
    @inline(__always)
    static func kernel(_ a: [Double], _ b: [Double], xx: Double, gamma: Double) -> Double {
        var aa = 0.0, ab = 0.0
        for k in 0..<a.count { aa += a[k] * a[k]; ab += a[k] * b[k] }
        return exp(-gamma * (aa + xx - 2 * ab))
    }
}

/// libsvm's `Solver` for the C-SVC dual: min ½αᵀQα − eᵀα, 0 ≤ α ≤ C, yᵀα = 0, `Q_ij = y_i y_j K(x_i, x_j)`.
struct SMOSolver {
    let count: Int
    let features: [[Double]]
    let squares: [Double]
    let y: [Double]
    let c: Double
    let gamma: Double
    let tolerance: Double
    var alpha: [Double]
    var gradient: [Double]
    var iterations = 0
    private var cache: [Int: [Float]] = [:]
    private var cacheOrder: [Int] = []
    private let cacheColumns: Int
    private let diagonal: [Double]
    private static let tau = 1e-12

    init(features: [[Double]], y: [Double], c: Double, gamma: Double, tolerance: Double, cacheBytes: Int) {
        count = features.count
        self.features = features
        squares = features.map { $0.reduce(0) { $0 + $1 * $1 } }
        self.y = y
        self.c = c
        self.gamma = gamma
        self.tolerance = tolerance
        alpha = Array(repeating: 0, count: features.count)
        gradient = Array(repeating: -1, count: features.count)
        cacheColumns = max(2, cacheBytes / max(1, 4 * features.count))
        diagonal = Array(repeating: 1, count: features.count) // K(x, x) = 1 for RBF
    }

    private func kernel(_ i: Int, _ j: Int) -> Double {
        var dot = 0.0
        let a = features[i], b = features[j]
        for k in 0..<a.count { dot += a[k] * b[k] }
        return exp(-gamma * (squares[i] + squares[j] - 2 * dot))
    }

    /// Column `i` of Q as float32, as libsvm caches it.
    private mutating func column(_ i: Int) -> [Float] {
        if let cached = cache[i] { return cached }
        var q = [Float](repeating: 0, count: count)
        let yi = y[i]
        for j in 0..<count { q[j] = Float(yi * y[j] * kernel(i, j)) }
        if cache.count >= cacheColumns, let evicted = cacheOrder.first {
            cacheOrder.removeFirst()
            cache[evicted] = nil
        }
        cache[i] = q
        cacheOrder.append(i)
        return q
    }

    private func isUpper(_ i: Int) -> Bool { alpha[i] >= c }
    private func isLower(_ i: Int) -> Bool { alpha[i] <= 0 }

    /// WSS3; nil when optimal within tolerance.
    private mutating func selectWorkingSet() -> (Int, Int)? {
        var gmax = -Double.infinity, gmax2 = -Double.infinity
        var gmaxIndex = -1, gminIndex = -1
        var objectiveMin = Double.infinity
        for t in 0..<count {
            if y[t] == 1 {
                if !isUpper(t), -gradient[t] >= gmax { gmax = -gradient[t]; gmaxIndex = t }
            } else {
                if !isLower(t), gradient[t] >= gmax { gmax = gradient[t]; gmaxIndex = t }
            }
        }
        let i = gmaxIndex
        let qi: [Float] = i >= 0 ? column(i) : []
        for j in 0..<count {
            if y[j] == 1 {
                guard !isLower(j) else { continue }
                let gradDiff = gmax + gradient[j]
                if gradient[j] >= gmax2 { gmax2 = gradient[j] }
                if gradDiff > 0, i >= 0 {
                    let quad = diagonal[i] + diagonal[j] - 2 * y[i] * Double(qi[j])
                    let objective = -(gradDiff * gradDiff) / (quad > 0 ? quad : SMOSolver.tau)
                    if objective <= objectiveMin { gminIndex = j; objectiveMin = objective }
                }
            } else {
                guard !isUpper(j) else { continue }
                let gradDiff = gmax - gradient[j]
                if -gradient[j] >= gmax2 { gmax2 = -gradient[j] }
                if gradDiff > 0, i >= 0 {
                    let quad = diagonal[i] + diagonal[j] + 2 * y[i] * Double(qi[j])
                    let objective = -(gradDiff * gradDiff) / (quad > 0 ? quad : SMOSolver.tau)
                    if objective <= objectiveMin { gminIndex = j; objectiveMin = objective }
                }
            }
        }
        if gmax + gmax2 < tolerance || gminIndex == -1 { return nil }
        return (gmaxIndex, gminIndex)
    }

    mutating func solve() {
        let maxIterations = max(10_000_000, 100 * count)
        while iterations < maxIterations {
            guard let (i, j) = selectWorkingSet() else { break }
            iterations += 1
            let qi = column(i), qj = column(j)
            let oldI = alpha[i], oldJ = alpha[j]
            if y[i] != y[j] {
                var quad = diagonal[i] + diagonal[j] + 2 * Double(qi[j])
                if quad <= 0 { quad = SMOSolver.tau }
                let delta = (-gradient[i] - gradient[j]) / quad
                let diff = alpha[i] - alpha[j]
                alpha[i] += delta; alpha[j] += delta
                if diff > 0 {
                    if alpha[j] < 0 { alpha[j] = 0; alpha[i] = diff }
                } else {
                    if alpha[i] < 0 { alpha[i] = 0; alpha[j] = -diff }
                }
                if diff > 0 {
                    if alpha[i] > c { alpha[i] = c; alpha[j] = c - diff }
                } else {
                    if alpha[j] > c { alpha[j] = c; alpha[i] = c + diff }
                }
            } else {
                var quad = diagonal[i] + diagonal[j] - 2 * Double(qi[j])
                if quad <= 0 { quad = SMOSolver.tau }
                let delta = (gradient[i] - gradient[j]) / quad
                let sum = alpha[i] + alpha[j]
                alpha[i] -= delta; alpha[j] += delta
                if sum > c {
                    if alpha[i] > c { alpha[i] = c; alpha[j] = sum - c }
                } else {
                    if alpha[j] < 0 { alpha[j] = 0; alpha[i] = sum }
                }
                if sum > c {
                    if alpha[j] > c { alpha[j] = c; alpha[i] = sum - c }
                } else {
                    if alpha[i] < 0 { alpha[i] = 0; alpha[j] = sum }
                }
            }
            let deltaI = alpha[i] - oldI, deltaJ = alpha[j] - oldJ
            for k in 0..<count { gradient[k] += Double(qi[k]) * deltaI + Double(qj[k]) * deltaJ }
        }
    }

    /// The bias: the mean of `y_i ∇_i` over free vectors, else the middle of the feasible interval.
    func rho() -> Double {
        var free = 0, sumFree = 0.0
        var upperBound = Double.infinity, lowerBound = -Double.infinity
        for i in 0..<count {
            let yg = y[i] * gradient[i]
            if isUpper(i) {
                if y[i] == -1 { upperBound = min(upperBound, yg) } else { lowerBound = max(lowerBound, yg) }
            } else if isLower(i) {
                if y[i] == 1 { upperBound = min(upperBound, yg) } else { lowerBound = max(lowerBound, yg) }
            } else {
                free += 1
                sumFree += yg
            }
        }
        return free > 0 ? sumFree / Double(free) : (upperBound + lowerBound) / 2
    }
}

import LetheCore
