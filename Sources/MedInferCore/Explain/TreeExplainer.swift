/// Exact path-dependent TreeSHAP values and interaction values for a tree ensemble,
/// as XGBoost's `pred_contribs` / `pred_interactions` and `shap.TreeExplainer` define
/// them: per row, one value per feature plus a bias column (the expected model output)
/// that together sum to the raw margin.
///
/// Work is organised by leaf path rather than by recursive tree walk: for each path the
/// row only decides which of its distinct features it follows (a bit pattern); the
/// Shapley weights for a pattern are a pure function of the path, so short paths get
/// all 2^D patterns precomputed once and a row costs a table lookup per path.
public final class TreeExplainer: @unchecked Sendable {  // immutable after init
    public let ensemble: TreeEnsemble
    let paths: LeafPaths
    /// Per-path factors for every pattern (see `LeafPaths.Path.table`).
    let factorTable: [Double]
    /// Stable copies of `paths.zeroFractions` and `paths.features` for the row loops.
    private let zeroFractions: UnsafeMutablePointer<Double>
    private let featuresPointer: UnsafeMutablePointer<Int32>

    /// Paths with at most this many distinct features get their factors tabulated...
    static let maxTabulatedElements = 10
    /// ...while the tables stay under this many values (32 MiB).
    static let tableBudget = 1 << 22

    public init(_ ensemble: TreeEnsemble) throws(MedInferError) {
        self.ensemble = ensemble
        var paths = try LeafPaths(ensemble)
        var table: [Double] = []
        var weights = [Double](repeating: 0, count: LeafPaths.maxElements + 1)
        for p in paths.paths.indices {
            let count = paths.paths[p].elementCount
            guard count <= Self.maxTabulatedElements else { continue }
            let size = (1 << count) * count
            guard table.count + size <= Self.tableBudget else { continue }
            paths.paths[p].table = table.count
            let start = table.count
            table.append(contentsOf: repeatElement(0, count: size))
            let zeroStart = paths.paths[p].elementStart
            paths.zeroFractions.withUnsafeBufferPointer { zero in
                weights.withUnsafeMutableBufferPointer { w in
                    table.withUnsafeMutableBufferPointer { out in
                        for pattern in 0..<(1 << count) {
                            PathShapley.factors(zero: zero.baseAddress! + zeroStart, pattern: UInt64(pattern),
                                                count: count, weights: w.baseAddress!,
                                                out: out.baseAddress! + start + pattern * count)
                        }
                    }
                }
            }
        }
        self.paths = paths
        self.factorTable = table
        zeroFractions = .allocate(capacity: max(paths.zeroFractions.count, 1))
        zeroFractions.initialize(from: paths.zeroFractions, count: paths.zeroFractions.count)
        featuresPointer = .allocate(capacity: max(paths.features.count, 1))
        featuresPointer.initialize(from: paths.features, count: paths.features.count)
    }

    deinit {
        zeroFractions.deallocate()
        featuresPointer.deallocate()
    }

    /// Values per row: (features + 1) x outputs.
    public var valuesPerRow: Int { (ensemble.featureCount + 1) * ensemble.outputCount }
    public var interactionValuesPerRow: Int {
        (ensemble.featureCount + 1) * (ensemble.featureCount + 1) * ensemble.outputCount
    }

    /// SHAP values of `rows` rows: `out[(row * (M + 1) + j) * K + k]` for feature j
    /// (j == M: the bias) and output column k. Arguments validated by the caller.
    public func shapValues(features: UnsafePointer<Float>, rows: Int, iterations: Int,
                           out: UnsafeMutablePointer<Double>) {
        withRowScratch { row, decisions, factors, weights in
            for r in 0..<rows {
                let x = prepare(features + r * ensemble.featureCount, into: row)
                accumulateValues(x, iterations: iterations, into: out + r * valuesPerRow,
                                 decisions: decisions, factors: factors, weights: weights)
            }
        }
    }

    /// SHAP interaction values: `out[((row * (M + 1) + i) * (M + 1) + j) * K + k]`; row i
    /// and column j == M are zero except [M][M], the bias.
    public func interactionValues(features: UnsafePointer<Float>, rows: Int, iterations: Int,
                                  out: UnsafeMutablePointer<Double>) {
        let m = ensemble.featureCount
        let columns = ensemble.outputCount
        withRowScratch { row, decisions, factors, weights in
            withUnsafeTemporaryAllocation(of: Double.self, capacity: valuesPerRow) { phiBuffer in
                let phi = phiBuffer.baseAddress!
                for r in 0..<rows {
                    let x = prepare(features + r * m, into: row)
                    let target = out + r * interactionValuesPerRow
                    target.initialize(repeating: 0, count: interactionValuesPerRow)
                    accumulateValues(x, iterations: iterations, into: phi,
                                     decisions: decisions, factors: factors, weights: weights)
                    forEachPath(x, iterations: iterations, decisions: decisions) { path, pattern, value, scale in
                        let count = path.elementCount
                        PathShapley.interactionFactors(
                            zero: zeroFractions + path.elementStart, pattern: pattern, count: count,
                            weights: weights, out: factors)
                        for i in 0..<count {
                            let fi = Int(self.featuresPointer[path.elementStart + i])
                            for j in 0..<count where j != i {
                                let f = factors[i * count + j]
                                if f == 0 { continue }
                                let fj = Int(self.featuresPointer[path.elementStart + j])
                                value.add(f * scale, to: target + (fi * (m + 1) + fj) * columns)
                            }
                        }
                    }
                    for i in 0..<m {
                        for k in 0..<columns {
                            var offDiagonal = 0.0
                            for j in 0..<m where j != i { offDiagonal += target[(i * (m + 1) + j) * columns + k] }
                            target[(i * (m + 1) + i) * columns + k] = phi[i * columns + k] - offDiagonal
                        }
                    }
                    for k in 0..<columns {
                        target[(m * (m + 1) + m) * columns + k] = phi[m * columns + k]
                    }
                }
            }
        }
    }

    // MARK: - Per-row work

    /// Leaf values of one path, added with the tree's output mapping.
    struct LeafValue {
        let values: UnsafePointer<Double>
        let width: Int
        let outputIndex: Int

        /// target[col] += factor * value for each of the leaf's columns.
        @inline(__always)
        func add(_ factor: Double, to target: UnsafeMutablePointer<Double>) {
            if width == 1 {
                target[outputIndex] += factor * values[0]
            } else {
                for c in 0..<width { target[c] += factor * values[c] }
            }
        }
    }


    private func withRowScratch(_ body: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Bool>,
                                         UnsafeMutablePointer<Double>, UnsafeMutablePointer<Double>) -> Void) {
        let largestTree = ensemble.trees.reduce(0) { max($0, $1.nodes.count) }
        let longest = max(paths.longestPath, 1)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: ensemble.featureCount) { row in
        withUnsafeTemporaryAllocation(of: Bool.self, capacity: largestTree) { decisions in
        withUnsafeTemporaryAllocation(of: Double.self, capacity: longest * longest) { factors in
        withUnsafeTemporaryAllocation(of: Double.self, capacity: longest + 1) { weights in
            body(row.baseAddress!, decisions.baseAddress!, factors.baseAddress!, weights.baseAddress!)
        }
        }
        }
        }
    }

    /// The row as the trees see it (after the model's preprocessing, if any).
    private func prepare(_ row: UnsafePointer<Float>, into scratch: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        guard let preprocessing = ensemble.preprocessing else { return row }
        preprocessing.apply(row, count: ensemble.featureCount, into: scratch)
        return UnsafePointer(scratch)
    }

    /// Calls `body` for every leaf path of the first `iterations` iterations with the
    /// row's pattern, the leaf's values and the tree's scale (1/iterations for averaging
    /// models, else 1).
    @inline(__always)
    private func forEachPath(_ x: UnsafePointer<Float>, iterations: Int, decisions: UnsafeMutablePointer<Bool>,
                             _ body: (LeafPaths.Path, UInt64, LeafValue, Double) -> Void) {
        let treeCount = iterations * ensemble.treesPerIteration
        let scale = ensemble.averaging.divides(raw: true) ? 1 / Double(iterations) : 1
        ensemble.trees.withUnsafeBufferPointer { trees in
        paths.paths.withUnsafeBufferPointer { allPaths in
        paths.steps.withUnsafeBufferPointer { steps in
            for t in 0..<treeCount {
                let tree = trees[t]
                tree.nodes.withUnsafeBufferPointer { nodes in
                tree.categorySets.withUnsafeBufferPointer { sets in
                tree.values.withUnsafeBufferPointer { values in
                    for i in 0..<nodes.count where !nodes[i].isLeaf {
                        let node = nodes[i]
                        decisions[i] = node.goesLeft(x[Int(node.feature)], categorySets: sets)
                    }
                    for p in paths.treeStart[t]..<paths.treeStart[t + 1] {
                        let path = allPaths[p]
                        var pattern: UInt64 = (1 << UInt64(path.elementCount)) &- 1
                        for s in path.stepStart..<(path.stepStart + path.stepCount) {
                            let step = steps[s]
                            if decisions[Int(step.node)] != step.wentLeft {
                                pattern &= ~(1 << UInt64(step.element))
                            }
                        }
                        let leaf = LeafValue(values: values.baseAddress! + Int(path.leaf) * tree.leafWidth,
                                             width: tree.leafWidth, outputIndex: tree.outputIndex)
                        body(path, pattern, leaf, scale)
                    }
                }
                }
                }
            }
        }
        }
        }
    }

    private func accumulateValues(_ x: UnsafePointer<Float>, iterations: Int, into phi: UnsafeMutablePointer<Double>,
                                  decisions: UnsafeMutablePointer<Bool>, factors: UnsafeMutablePointer<Double>,
                                  weights: UnsafeMutablePointer<Double>) {
        let m = ensemble.featureCount
        let columns = ensemble.outputCount
        phi.initialize(repeating: 0, count: valuesPerRow)
        factorTable.withUnsafeBufferPointer { table in
            forEachPath(x, iterations: iterations, decisions: decisions) { path, pattern, value, scale in
                let count = path.elementCount
                let pathFactors: UnsafePointer<Double>
                if path.table >= 0 {
                    pathFactors = table.baseAddress! + path.table + Int(pattern) * count
                } else {
                    PathShapley.factors(zero: zeroFractions + path.elementStart, pattern: pattern, count: count,
                                        weights: weights, out: factors)
                    pathFactors = UnsafePointer(factors)
                }
                for k in 0..<count where pathFactors[k] != 0 {
                    let feature = Int(featuresPointer[path.elementStart + k])
                    value.add(pathFactors[k] * scale, to: phi + feature * columns)
                }
            }
        }
        // Bias: the base margin plus each tree's expected value.
        let treeCount = iterations * ensemble.treesPerIteration
        let scale = ensemble.averaging.divides(raw: true) ? 1 / Double(iterations) : 1
        let bias = phi + m * columns
        for t in 0..<treeCount {
            let tree = ensemble.trees[t]
            paths.expectations[t].withUnsafeBufferPointer { mean in
                LeafValue(values: mean.baseAddress!, width: tree.leafWidth, outputIndex: tree.outputIndex)
                    .add(scale, to: bias)
            }
        }
        for k in 0..<columns { bias[k] += ensemble.baseMargin[k] }
    }
}
