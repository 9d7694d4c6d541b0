import Testing
@testable import MedInferCore

/// The rounding must make `x <= t'` on float32 exactly the library's own comparison.
@Suite struct ThresholdRoundingTests {
    static let probes: [Float] = [0, -0.0, 1, -1, 0.5, 1e-38, -1e-38, .leastNonzeroMagnitude,
                                  -.leastNonzeroMagnitude, .greatestFiniteMagnitude,
                                  -.greatestFiniteMagnitude, .infinity, -.infinity, 3.4028e38, 0.1, 1e30]

    @Test func strictLessMatchesXGBoost() {
        for t in Self.probes {
            let rounded = ThresholdRounding.fromStrictLess(t)
            for base in Self.probes {
                for x in [base, base.nextUp, base.nextDown] {
                    #expect((x < t) == (x <= rounded), "x=\(x) t=\(t)")
                }
            }
        }
    }

    @Test func lessEqualDoubleMatchesLightGBMAndScikitLearn() {
        let thresholds: [Double] = [0, -0.0, 0.1, -0.1, 1e-35, 1.0000000180025095e-35, 0.5000000000000001,
                                    1e39, -1e39, .infinity, -.infinity, Double(Float(0.3)), 2.5e-46]
        for t in thresholds {
            let rounded = ThresholdRounding.fromLessEqual(t)
            for base in Self.probes + thresholds.map({ Float($0) }) {
                for x in [base, base.nextUp, base.nextDown] {
                    #expect((Double(x) <= t) == (x <= rounded), "x=\(x) t=\(t)")
                }
            }
        }
    }
}
