import Testing
@testable import MedInferCore

/// The compiled scorer (vector, lockstep, tail and branch-free categorical paths) against a
/// plain node-by-node walk of the IR, on random trees with every kind of split and rows full
/// of edge values. Any layout or walk bug shows up as a mismatch.
@Suite struct ForestScorerTests {
    struct Generator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 33
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
        mutating func unit() -> Float { Float(next() % 1_000_000) / 1_000_000 }
    }

    static let specials: [Float] = [.nan, .infinity, -.infinity, 0, -0.0, 1e-36, -1e-36, 1e30, -1e30, -0.5, 31.5, 40]

    /// A random tree: numeric splits (some with +-inf or NaN thresholds), zero-as-missing
    /// splits and categorical splits of either library's rule, up to `depth` deep.
    static func randomTree(depth: Int, features: Int, width: Int, outputs: Int, _ g: inout Generator) -> DecisionTree {
        var nodes: [TreeNode] = []
        var values: [Double] = []
        var sets: [CategorySet] = []
        func build(_ level: Int) -> Int32 {
            let id = nodes.count
            nodes.append(.leaf(cover: 1))
            values += (0..<width).map { _ in Double(g.unit()) - 0.5 }
            if level == depth || (level > 1 && g.below(5) == 0) { return Int32(id) }
            var node = TreeNode(leftChild: 0, rightChild: 0, feature: Int32(g.below(features)),
                                threshold: g.unit() * 4 - 2, defaultLeft: g.below(2) == 0,
                                zeroIsMissing: false, categorySet: -1, cover: 1)
            switch g.below(12) {
            case 0: node.threshold = .infinity
            case 1: node.threshold = -.infinity
            case 2: node.threshold = .nan
            case 3: node.zeroIsMissing = true
            case 4, 5:
                let large = g.below(3) == 0
                let ids = (0..<1 + g.below(6)).map { _ in g.below(large ? 100 : 32) } + (g.below(3) == 0 ? [31] : [])
                sets.append(CategorySet(categories: ids, rule: .lightgbm))
                node.categorySet = Int32(sets.count - 1)
                node.defaultLeft = false
            case 6:
                sets.append(CategorySet(categories: (0..<1 + g.below(4)).map { _ in g.below(40) }, rule: .xgboost))
                node.categorySet = Int32(sets.count - 1)
            default: break
            }
            let left = build(level + 1)
            let right = build(level + 1)
            node.leftChild = left
            node.rightChild = right
            nodes[id] = node
            return Int32(id)
        }
        _ = build(0)
        return DecisionTree(nodes: nodes, values: values, leafWidth: width,
                            outputIndex: width == 1 ? g.below(outputs) : 0, categorySets: sets)
    }

    /// The IR walked node by node, summed in `Value` in tree order.
    static func reference<Value: BinaryFloatingPoint>(_ e: TreeEnsemble, _ row: [Float], as: Value.Type) -> [Double] {
        var acc = e.baseMargin.map { Value($0) }
        for tree in e.trees {
            var id = 0
            while !tree.nodes[id].isLeaf {
                let node = tree.nodes[id]
                let left = tree.categorySets.withUnsafeBufferPointer { node.goesLeft(row[Int(node.feature)], categorySets: $0) }
                id = Int(left ? node.leftChild : node.rightChild)
            }
            if tree.leafWidth == 1 {
                acc[tree.outputIndex] += Value(tree.values[id])
            } else {
                for k in 0..<tree.leafWidth { acc[k] += Value(tree.values[id * tree.leafWidth + k]) }
            }
        }
        return acc.map { Double($0) }
    }

    @Test(arguments: [(1, 3, false), (3, 2, true), (5, 1, false), (8, 1, true), (12, 2, false)])
    func compiledScoringMatchesTheIR(depth: Int, outputs: Int, float32: Bool) throws {
        var g = Generator(state: UInt64(depth * 31 + outputs))
        let features = 6
        let trees = (0..<37).map { t in
            Self.randomTree(depth: t % 3 == 0 ? min(depth, 3) : depth, features: features,
                            width: outputs > 1 && t % 2 == 0 ? outputs : 1, outputs: outputs, &g)
        }
        let ensemble = TreeEnsemble(format: .lightgbm, objective: "test", featureCount: features, featureNames: nil,
                                    classCount: outputs, outputCount: outputs, trees: trees, treesPerIteration: 1,
                                    baseMargin: (0..<outputs).map { Double($0) * 0.25 }, averaging: .none,
                                    accumulatesInFloat32: float32, transform: .identity)
        try ensemble.validate()
        let forest = CompiledForest(ensemble)
        for rows in [1, 7, 8, 9, 64, 150] {
            // A third edge values, a third category-like values (0..<40, with fractions),
            // a third ordinary values around the thresholds.
            let x = (0..<rows * features).map { i -> Float in
                switch i % 3 {
                case 0: return Self.specials[g.below(Self.specials.count)]
                case 1: return Float(g.below(40)) + (g.below(2) == 0 ? 0 : 0.5)
                default: return g.unit() * 6 - 3
                }
            }
            var out = [Double](repeating: 0, count: rows * outputs)
            forest.predict(features: x, rows: rows, iterations: trees.count, raw: true, out: &out)
            for r in 0..<rows {
                let row = Array(x[r * features..<(r + 1) * features])
                let expected = float32 ? Self.reference(ensemble, row, as: Float.self)
                                       : Self.reference(ensemble, row, as: Double.self)
                for k in 0..<outputs {
                    #expect(out[r * outputs + k] == expected[k], "depth \(depth) rows \(rows) row \(r) output \(k): \(row)")
                }
            }
        }
    }
}
