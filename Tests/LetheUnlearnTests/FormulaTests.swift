import LetheCore
import LetheIR
import XCTest
@testable import LetheUnlearn

final class FormulaTests: XCTestCase {
    func testScaleAtAlphaOneIsTheEnergy() {
        for s in [0.0, 0.01, 0.3, 0.9, 1.0] {
            XCTAssertEqual(FeatureSpace.scale(energy: s, alpha: 1), s, accuracy: 1e-15)
        }
    }

    func testScaleTendsToOneOnTheSupport() {
        XCTAssertEqual(FeatureSpace.scale(energy: 0.01, alpha: 1e9), 1, accuracy: 1e-6)
        XCTAssertEqual(FeatureSpace.scale(energy: 0, alpha: 1e9), 0)
        // α·s/((α−1)s+1) at α = 100, s = 0.1 is 10 / 10.9.
        XCTAssertEqual(FeatureSpace.scale(energy: 0.1, alpha: 100), 10 / 10.9, accuracy: 1e-15)
        // α below 1 shrinks: α = 0.5, s = 0.5 gives 0.25 / 0.75.
        XCTAssertEqual(FeatureSpace.scale(energy: 0.5, alpha: 0.5), 1.0 / 3.0, accuracy: 1e-15)
    }

    func testEnergiesAreNormalisedEigenvalues() throws {
        // Eigenvalues 1 and 3 → s = 0.25, 0.75.
        let g = [2.0, 1.0, 1.0, 2.0]
        let space = try FeatureSpace(gram: g, dimension: 2)
        XCTAssertEqual(space.energies[0], 0.25, accuracy: 1e-14)
        XCTAssertEqual(space.energies[1], 0.75, accuracy: 1e-14)
        // α = 1: M = G / tr(G).
        let m = space.projector(alpha: 1)
        for (value, expected) in zip(m, g.map { $0 / 4 }) { XCTAssertEqual(value, expected, accuracy: 1e-14) }
    }

    /// The projection in factored form agrees with forming M_r, M_f and P explicitly, in both orientations.
    func testProjectionMatchesExplicitFormula() throws {
        let d = 7, o = 5
        let xr = TestSupport.randomValues(30 * d, seed: 1), xf = TestSupport.randomValues(12 * d, seed: 2)
        let gr = TestSupport.gram(xr, rows: 30, d: d), gf = TestSupport.gram(xf, rows: 12, d: d)
        let w = TestSupport.randomValues(o * d, seed: 3)
        let retain = try FeatureSpace(gram: gr, dimension: d), forget = try FeatureSpace(gram: gf, dimension: d)
        for (ar, af) in [(100.0, 3.0), (10, 1), (1000, 100)] {
            let mr = retain.projector(alpha: ar), mf = forget.projector(alpha: af)
            // P = I − (M_f − M_f M_r); W_new = W Pᵀ.
            let mfmr = TestSupport.multiply(mf, mr, m: d, k: d, n: d)
            let id = TestSupport.identity(d)
            let p = (0..<(d * d)).map { id[$0] - (mf[$0] - mfmr[$0]) }
            let expected = TestSupport.multiply(w, TestSupport.transpose(p, rows: d, columns: d), m: o, k: d, n: d)
            let got = try InputProjection.apply(
                to: w, outputs: o, retain: retain, alphaRetain: ar, forget: forget, alphaForget: af)
            XCTAssertLessThan(TestSupport.maxAbsDifference(got, expected), 1e-12)
            // The d × O form: B_new = P B with B = Wᵀ is W_newᵀ.
            let b = TestSupport.transpose(w, rows: o, columns: d)
            let bNew = TestSupport.multiply(p, b, m: d, k: d, n: o)
            XCTAssertLessThan(
                TestSupport.maxAbsDifference(TestSupport.transpose(bNew, rows: d, columns: o), got), 1e-12)
        }
    }

    /// Identical retain and forget spaces with M_r ≈ I on them: nothing is removed.
    func testIdenticalSpacesRemoveNothing() throws {
        let d = 6
        let x = TestSupport.randomValues(40 * d, seed: 9)
        let space = try FeatureSpace(gram: TestSupport.gram(x, rows: 40, d: d), dimension: d)
        let w = TestSupport.randomValues(4 * d, seed: 10)
        let patched = try InputProjection.apply(
            to: w, outputs: 4, retain: space, alphaRetain: 1e12, forget: space, alphaForget: 3)
        XCTAssertLessThan(TestSupport.maxAbsDifference(patched, w), 1e-9)
    }

    /// Orthogonal spaces: the weight loses exactly its forget-space part.
    func testOrthogonalSpacesRemoveTheForgetSpace() throws {
        let d = 4
        // Retain rows span e0, e1; forget rows span e2 only.
        var xr: [Double] = [], xf: [Double] = []
        for i in 0..<10 { xr += [Double(i % 3) + 1, Double(i % 2) - 0.5, 0, 0]; xf += [0, 0, Double(i) + 1, 0] }
        let retain = try FeatureSpace(gram: TestSupport.gram(xr, rows: 10, d: d), dimension: d)
        let forget = try FeatureSpace(gram: TestSupport.gram(xf, rows: 10, d: d), dimension: d)
        let w = [1.0, 2, 3, 4, 5, 6, 7, 8]
        let expected = [1.0, 2, 0, 4, 5, 6, 0, 8]
        // One direction holds all the forget energy (s = 1 → λ = 1 for every α_f).
        for af in [1.0, 3, 100] {
            let patched = try InputProjection.apply(
                to: w, outputs: 2, retain: retain, alphaRetain: 100, forget: forget, alphaForget: af)
            XCTAssertLessThan(TestSupport.maxAbsDifference(patched, expected), 1e-12)
        }
    }

    /// Fewer rows than dimensions: the space from the rows (an n × n problem) equals the space from G.
    func testSpaceFromRowsEqualsSpaceFromGram() throws {
        let d = 12, n = 5
        let x = TestSupport.randomValues(n * d, seed: 21).map(Float.init)
        let full = try FeatureSpace(gram: TestSupport.gram(x.map(Double.init), rows: n, d: d), dimension: d)
        let thin = try FeatureSpace(rows: x, count: n, dimension: d)
        XCTAssertEqual(thin.rank, n)
        XCTAssertLessThan(TestSupport.maxAbsDifference(Array(full.energies.suffix(n)), thin.energies), 1e-12)
        for alpha in [1.0, 3, 100] {
            XCTAssertLessThan(
                TestSupport.maxAbsDifference(full.projector(alpha: alpha), thin.projector(alpha: alpha)), 1e-10)
        }
        let other = try FeatureSpace(
            gram: TestSupport.gram(TestSupport.randomValues(30 * d, seed: 22), rows: 30, d: d), dimension: d)
        let w = TestSupport.randomValues(3 * d, seed: 23)
        let a = try InputProjection.apply(
            to: w, outputs: 3, retain: other, alphaRetain: 100, forget: full, alphaForget: 3)
        let b = try InputProjection.apply(
            to: w, outputs: 3, retain: other, alphaRetain: 100, forget: thin, alphaForget: 3)
        XCTAssertLessThan(TestSupport.maxAbsDifference(a, b), 1e-10)
    }

    /// One α pair through a Cholesky solve gives the eigen path's weights, from `G` and from rows.
    func testResolventSpaceEqualsTheEigenPath() throws {
        let d = 10, o = 4
        let w = TestSupport.randomValues(o * d, seed: 31)
        let xr = TestSupport.randomValues(50 * d, seed: 32), xf = TestSupport.randomValues(6 * d, seed: 33)
        let retainGram = TestSupport.gram(xr, rows: 50, d: d), forgetGram = TestSupport.gram(xf, rows: 6, d: d)
        let eigen = (
            retain: try FeatureSpace(gram: retainGram, dimension: d),
            forget: try FeatureSpace(gram: forgetGram, dimension: d)
        )
        let fromRows = try ResolventSpace(rows: xf.map { Float($0) }, count: 6, dimension: d)
        let eigenFromRows = try FeatureSpace(rows: xf.map { Float($0) }, count: 6, dimension: d)
        let solve = (
            retain: try ResolventSpace(gram: retainGram, dimension: d),
            forget: try ResolventSpace(gram: forgetGram, dimension: d)
        )
        for (ar, af) in [(100.0, 3.0), (10, 1), (1000, 100), (0.5, 0.3), (1.001, 1 + 1e-7), (1.02, 0.985)] {
            let expected = try InputProjection.apply(
                to: w, outputs: o, retain: eigen.retain, alphaRetain: ar, forget: eigen.forget, alphaForget: af)
            let got = try InputProjection.apply(
                to: w, outputs: o, retain: solve.retain, alphaRetain: ar, forget: solve.forget, alphaForget: af)
            XCTAssertGreaterThan(TestSupport.maxAbsDifference(expected, w), 1e-3)
            XCTAssertLessThan(TestSupport.maxAbsDifference(got, expected), 1e-10, "α_r \(ar), α_f \(af)")
            let thinExpected = try InputProjection.apply(
                to: w, outputs: o, retain: eigen.retain, alphaRetain: ar, forget: eigenFromRows, alphaForget: af)
            let thin = try InputProjection.apply(
                to: w, outputs: o, retain: solve.retain, alphaRetain: ar, forget: fromRows, alphaForget: af)
            XCTAssertLessThan(TestSupport.maxAbsDifference(thin, thinExpected), 1e-9, "rows, α_r \(ar), α_f \(af)")
        }
        // The streamed projection's entry point, which takes `G` over, agrees with the space.
        for alpha in [3.0, 1, 0.5, 1.005] {
            var expected = w, got = w
            try solve.forget.subtractProjection(
                of: w, outputs: o, alpha: alpha, threshold: InputProjection.negligibleScale, from: &expected)
            try ResolventSpace.subtractProjection(
                gram: forgetGram, dimension: d, of: w, outputs: o, alpha: alpha, from: &got)
            XCTAssertLessThan(TestSupport.maxAbsDifference(got, expected), 1e-12, "α \(alpha)")
        }
        XCTAssertTrue(solve.retain.energies.isEmpty)
        let zero = try ResolventSpace(gram: [Double](repeating: 0, count: d * d), dimension: d)
        XCTAssertEqual(
            try InputProjection.apply(to: w, outputs: o, retain: zero, alphaRetain: 100, forget: zero, alphaForget: 3),
            w)
    }

    /// The Cholesky solve (column-order factor, row-major triangular solves) against A X = B
    /// multiplied back, with more and fewer right-hand sides than unknowns; a matrix that is not
    /// positive definite is refused.
    func testPositiveDefiniteSolveMultipliesBack() throws {
        for (d, columns) in [(1, 1), (7, 3), (5, 12)] {
            let x = TestSupport.randomValues((d + 4) * d, seed: UInt64(40 + d))
            var a = TestSupport.gram(x, rows: d + 4, d: d)
            for i in 0..<d { a[i * d + i] += 0.1 }
            let b = TestSupport.randomValues(d * columns, seed: UInt64(50 + d))
            let solution = try LinearAlgebra.solvePositiveDefinite(a, dimension: d, b, columns: columns)
            var back = [Double](repeating: 0, count: d * columns)
            LinearAlgebra.multiply(a, solution, into: &back, m: d, n: columns, k: d)
            XCTAssertLessThan(TestSupport.maxAbsDifference(back, b), 1e-9, "d \(d), \(columns) columns")
        }
        XCTAssertThrowsError(
            try LinearAlgebra.solvePositiveDefinite([1, 2, 2, 1], dimension: 2, [1, 1], columns: 1))
    }

    func testEmptyStatisticsLeaveTheWeight() throws {
        let zero = try FeatureSpace(gram: [Double](repeating: 0, count: 9), dimension: 3)
        XCTAssertEqual(zero.energies, [0, 0, 0])
        let w = [1.0, 2, 3]
        XCTAssertEqual(
            try InputProjection.apply(to: w, outputs: 1, retain: zero, alphaRetain: 100, forget: zero, alphaForget: 3),
            w)
    }

    func testNonFiniteStatisticsAreRefused() {
        XCTAssertThrowsError(try FeatureSpace(gram: [1, .nan, .nan, 1], dimension: 2))
    }
}

final class ProjectionPlanTests: XCTestCase {
    /// A grouped convolution is projected group by group with each group's own spaces, and a float16
    /// weight comes back as float16 (rounded to nearest even) with its shape.
    func testGroupedHalfPrecisionConvolution() throws {
        let o = 4, cPerGroup = 3, groups = 2, d = cPerGroup * 2 * 2
        let values = TestSupport.randomValues(o * d, seed: 31)
        let weight = Tensor(shape: [o, cPerGroup, 2, 2], values: values.map { Float16(Float($0)) })
        let graph = Graph(
            nodes: [
                Node(
                    name: "conv", opType: "Conv", inputs: ["x", "k"], outputs: ["y"],
                    attributes: [("group", .int(groups))])
            ],
            initializers: [
                Initializer(name: "k", tensor: weight),
                Initializer(name: "other", tensor: Tensor(shape: [1], values: [Float(5)]))
            ])
        let model = Model(graph: graph)
        let layers = LayerDiscovery.discover(in: model).layers
        XCTAssertEqual(layers.first?.groups, 2)
        var stats = LayerStatistics(layer: "k", groups: groups, dimension: d)
        for g in 0..<groups {
            stats.retain[g] = TestSupport.gram(TestSupport.randomValues(20 * d, seed: 40 + UInt64(g)), rows: 20, d: d)
            stats.forget[g] = TestSupport.gram(TestSupport.randomValues(6 * d, seed: 50 + UInt64(g)), rows: 6, d: d)
        }
        let plan = try ProjectionPlan(model: model, layers: layers, statistics: StatisticsSet(layers: [stats]))
        let patched = try XCTUnwrap(try plan.patchedWeights(alphaRetain: 100, alphaForget: 3)["k"])
        XCTAssertEqual(patched.dtype, .float16)
        XCTAssertEqual(patched.shape, weight.shape)
        let stored = weight.doubleValues()
        let got = patched.doubleValues()
        let rows = o / groups
        for g in 0..<groups {
            let slice = Array(stored[(g * rows * d)..<((g + 1) * rows * d)])
            let expected = try InputProjection.apply(
                to: slice, outputs: rows, retain: try FeatureSpace(gram: stats.retain[g], dimension: d),
                alphaRetain: 100,
                forget: try FeatureSpace(gram: stats.forget[g], dimension: d), alphaForget: 3)
            let rounded = expected.map { Double(Float(Float16(Float($0)))) }
            XCTAssertEqual(Array(got[(g * rows * d)..<((g + 1) * rows * d)]), rounded, "group \(g)")
        }
        XCTAssertEqual(model.replacingWeights(["k": patched]).graph.initializer(named: "other")?.floatValues(), [5])
    }
}
