import Testing
@testable import MedInferCore

/// TreeSHAP checked against the definition: Shapley values of the path-dependent value
/// function v(S) = E[f(x) | x_S], where a split on a feature outside S follows both
/// children weighted by cover. Brute force over all 2^M coalitions on random trees.
@Suite struct TreeExplainerTests {
    /// A deterministic generator so failures reproduce.
    struct Generator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 33
        }
        mutating func unit() -> Double { Double(next() % 1_000_000) / 1_000_000 }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    }

    /// A random tree of the given depth over `features` features, with covers that add up.
    static func randomTree(depth: Int, features: Int, _ g: inout Generator) -> DecisionTree {
        var nodes: [TreeNode] = []
        var values: [Double] = []
        func build(_ level: Int, cover: Double) -> Int32 {
            let id = nodes.count
            nodes.append(.leaf(cover: cover))
            values.append(0)
            if level == depth || (level > 0 && g.below(4) == 0) {
                values[id] = g.unit() * 2 - 1
                return Int32(id)
            }
            let share = 0.1 + 0.8 * g.unit()
            let feature = Int32(g.below(features))
            let threshold = Float(g.unit())
            let defaultLeft = g.below(2) == 0
            let left = build(level + 1, cover: cover * share)
            let right = build(level + 1, cover: cover * (1 - share))
            nodes[id] = TreeNode(leftChild: left, rightChild: right, feature: feature, threshold: threshold,
                                 defaultLeft: defaultLeft, zeroIsMissing: false, categorySet: -1, cover: cover)
            return Int32(id)
        }
        _ = build(0, cover: 100)
        return DecisionTree(nodes: nodes, values: values)
    }

    /// E[tree(x) | features in `known`], by the cover-weighted traversal.
    static func conditionalExpectation(_ tree: DecisionTree, _ x: [Float], known: Int) -> Double {
        func walk(_ id: Int) -> Double {
            let node = tree.nodes[id]
            if node.isLeaf { return tree.values[id] }
            let l = Int(node.leftChild), r = Int(node.rightChild)
            if known >> Int(node.feature) & 1 == 1 {
                let left = [CategorySet]().withUnsafeBufferPointer { node.goesLeft(x[Int(node.feature)], categorySets: $0) }
                return walk(left ? l : r)
            }
            return (tree.nodes[l].cover * walk(l) + tree.nodes[r].cover * walk(r)) / node.cover
        }
        return walk(0)
    }

    static func bruteForceShapley(_ trees: [DecisionTree], _ x: [Float], features m: Int) -> [Double] {
        var factorial = [1.0]
        for i in 1...m { factorial.append(factorial[i - 1] * Double(i)) }
        func value(_ known: Int) -> Double { trees.reduce(0) { $0 + conditionalExpectation($1, x, known: known) } }
        var phi = [Double](repeating: 0, count: m + 1)
        for i in 0..<m {
            for subset in 0..<(1 << m) where subset >> i & 1 == 0 {
                let size = subset.nonzeroBitCount
                let weight = factorial[size] * factorial[m - size - 1] / factorial[m]
                phi[i] += weight * (value(subset | 1 << i) - value(subset))
            }
        }
        phi[m] = value(0)
        return phi
    }

    @Test(arguments: [(1, true), (2, true), (3, true), (5, true), (8, true), (2, false), (3, false), (8, false)])
    func matchesTheShapleyDefinition(depth: Int, tables: Bool) {
        var g = Generator(state: UInt64(depth) * 7919)
        let m = 6
        let trees = (0..<4).map { _ in Self.randomTree(depth: depth, features: m, &g) }
        let ensemble = TreeEnsemble(format: .xgboost, objective: "reg:squarederror", featureCount: m,
                                    featureNames: nil, classCount: 1, outputCount: 1, trees: trees,
                                    treesPerIteration: 1, baseMargin: [0.25], averaging: .none,
                                    accumulatesInFloat32: false, transform: .identity)
        // With and without the precomputed tables (the lean explainer of a cold start).
        let explainer = try! TreeExplainer(ensemble, tables: tables)
        let forest = CompiledForest(ensemble)
        for _ in 0..<20 {
            var x = (0..<m).map { _ in Float(g.unit()) }
            if g.below(3) == 0 { x[g.below(m)] = .nan }
            var phi = [Double](repeating: 0, count: m + 1)
            var margin = [0.0]
            explainer.shapValues(features: x, rows: 1, iterations: trees.count, out: &phi)
            forest.predict(features: x, rows: 1, iterations: trees.count, raw: true, out: &margin)
            var expected = Self.bruteForceShapley(trees, x, features: m)
            expected[m] += 0.25
            for j in 0...m { #expect(abs(phi[j] - expected[j]) < 1e-9, "depth \(depth) feature \(j): \(phi[j]) vs \(expected[j])") }
            #expect(abs(phi.reduce(0, +) - margin[0]) < 1e-9, "additivity")
        }
    }

    @Test func interactionRowsSumToShapValues() {
        var g = Generator(state: 42)
        let m = 5
        let trees = (0..<6).map { _ in Self.randomTree(depth: 4, features: m, &g) }
        let ensemble = TreeEnsemble(format: .lightgbm, objective: "regression", featureCount: m,
                                    featureNames: nil, classCount: 1, outputCount: 1, trees: trees,
                                    treesPerIteration: 1, baseMargin: [0], averaging: .none,
                                    accumulatesInFloat32: false, transform: .identity)
        let explainer = try! TreeExplainer(ensemble)
        let x: [Float] = [0.1, 0.9, .nan, 0.4, 0.6]
        var phi = [Double](repeating: 0, count: m + 1)
        var interactions = [Double](repeating: 0, count: (m + 1) * (m + 1))
        explainer.shapValues(features: x, rows: 1, iterations: trees.count, out: &phi)
        explainer.interactionValues(features: x, rows: 1, iterations: trees.count, out: &interactions)
        for i in 0..<m {
            let row = (0..<m).reduce(0.0) { $0 + interactions[i * (m + 1) + $1] }
            #expect(abs(row - phi[i]) < 1e-9)
            for j in 0..<m { #expect(abs(interactions[i * (m + 1) + j] - interactions[j * (m + 1) + i]) < 1e-9) }
        }
        #expect(abs(interactions[m * (m + 1) + m] - phi[m]) < 1e-12)
    }

    @Test func refusesTreesWithoutCovers() {
        let tree = DecisionTree(nodes: [TreeNode(leftChild: 1, rightChild: 2, feature: 0, threshold: 0, defaultLeft: true,
                                                 zeroIsMissing: false, categorySet: -1, cover: 0),
                                        .leaf(), .leaf()], values: [0, 1, 2])
        let ensemble = TreeEnsemble(format: .xgboost, objective: "x", featureCount: 1, featureNames: nil, classCount: 1,
                                    outputCount: 1, trees: [tree], treesPerIteration: 1, baseMargin: [0],
                                    averaging: .none, accumulatesInFloat32: false, transform: .identity)
        #expect(throws: MedInferError.self) { try TreeExplainer(ensemble) }
    }
}
