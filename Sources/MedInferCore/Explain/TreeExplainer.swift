/// Exact path-dependent TreeSHAP values and interaction values for a tree ensemble,
/// as XGBoost's `pred_contribs` / `pred_interactions` and `shap.TreeExplainer` define
/// them: per row, one value per feature plus a bias column (the expected model output)
/// that together sum to the raw margin.
///
/// Work is organised by leaf path rather than by recursive tree walk. For each path a
/// row only decides which of the path's distinct features it follows (a bit pattern),
/// and the Shapley factors for a pattern are a pure function of the path. So:
/// - short paths get all 2^D patterns precomputed once, while the tables fit in cache;
/// - rows are explained in batches, path by path, and a pattern's factors are computed
///   once per batch however many rows share it (deep trees: rows mostly do);
/// - a small tree's whole contribution depends only on its few split decisions, so
///   trees with at most 8 splits get one table row per decision combination, and a row
///   costs its split tests plus one table row per tree.
public final class TreeExplainer: @unchecked Sendable {  // immutable after init
    public let ensemble: TreeEnsemble
    let paths: LeafPaths
    /// Per-path factors for every pattern (see `LeafPaths.Path.table`).
    let factorTable: [Double]
    /// Stable copies of `paths.zeroFractions` and `paths.features` for the row loops.
    private let zeroFractions: UnsafeMutablePointer<Double>
    private let featuresPointer: UnsafeMutablePointer<Int32>
    private let largestTree: Int
    /// Per tree, the split nodes reachable from the root: the only ones a row is sent
    /// through (validation checks reachable nodes; a file may hold unreachable ones).
    private let reachableSplits: [[Int32]]
    /// Most features on a path that is memoized per batch (0: none is), sizing the memo.
    private let memoElements: Int
    /// Whole-tree tables (see `SplitTable`), one per tree or nil.
    let splitTables: [SplitTable?]

    /// A tree's contributions for every combination of its split decisions: for
    /// combination c (bit j: split j sends the row left), `values[c * features.count + i]`
    /// is added to feature `features[i]` (times the leaf column mapping of the tree).
    struct SplitTable {
        var splits: [Int32]
        var features: [Int32]
        var values: [Double]
    }

    /// Trees with at most this many splits get a `SplitTable`...
    static let maxTabulatedSplits = 8
    /// ...while the tables together stay under this many values (1 MiB).
    static let splitTableBudget = 1 << 17

    /// Paths with at most this many distinct features get their factors tabulated...
    static let maxTabulatedElements = 10
    /// ...while all tables together stay under this many values (1 MiB): a row touches
    /// every path's table once, so a table larger than the cache costs a miss per path
    /// and loses to computing the factors.
    static let tableBudget = 1 << 17
    /// Rows explained together; their patterns share one per-path memo.
    static let batchRows = 256
    /// Paths with up to this many features are memoized per batch (2^12 patterns).
    static let maxMemoizedElements = 12

    /// `tables: false` skips the precomputed tables (whole-tree split tables, path factor
    /// tables): building them takes milliseconds and pays off only over many rows, so a
    /// host that explains one row right after loading (a serverless cold start) starts
    /// with the lean explainer. Both compute the same values.
    public init(_ ensemble: TreeEnsemble, tables: Bool = true) throws(MedInferError) {
        self.ensemble = ensemble
        let tableBudget = tables ? Self.tableBudget : 0
        var paths = try LeafPaths(ensemble)
        var table: [Double] = []
        var weights = [Double](repeating: 0, count: LeafPaths.maxElements + 1)
        for p in paths.paths.indices {
            let count = paths.paths[p].elementCount
            guard count <= Self.maxTabulatedElements else { continue }
            let size = (1 << count) * count
            guard table.count + size <= tableBudget else { continue }
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
        largestTree = ensemble.trees.reduce(0) { max($0, $1.nodes.count) }
        reachableSplits = ensemble.trees.map { tree in
            var splits: [Int32] = []
            var stack = [0]
            while let id = stack.popLast() {
                let node = tree.nodes[id]
                if node.isLeaf { continue }
                splits.append(Int32(id))
                stack.append(Int(node.rightChild))
                stack.append(Int(node.leftChild))
            }
            return splits.sorted()
        }
        memoElements = paths.paths.reduce(0) { longest, path in
            path.table < 0 && path.elementCount <= Self.maxMemoizedElements ? max(longest, path.elementCount) : longest
        }
        splitTables = tables ? Self.splitTables(ensemble, paths) : [SplitTable?](repeating: nil, count: ensemble.trees.count)
    }

    private static func splitTables(_ ensemble: TreeEnsemble, _ paths: LeafPaths) -> [SplitTable?] {
        var budget = splitTableBudget
        var weights = [Double](repeating: 0, count: LeafPaths.maxElements + 1)
        var factors = [Double](repeating: 0, count: LeafPaths.maxElements)
        return ensemble.trees.enumerated().map { t, tree in
            // The splits reachable from the root: validation checks only those (a file may
            // hold unreachable nodes, e.g. pruned ones), so only those may be evaluated.
            var splits: [Int] = []
            var stack = [0]
            while let id = stack.popLast() {
                let node = tree.nodes[id]
                if node.isLeaf { continue }
                splits.append(id)
                stack.append(Int(node.rightChild))
                stack.append(Int(node.leftChild))
                if splits.count > maxTabulatedSplits { break }
            }
            splits.sort()
            guard tree.leafWidth == 1, !splits.isEmpty, splits.count <= maxTabulatedSplits else { return nil }
            var features: [Int32] = []
            for s in splits where !features.contains(tree.nodes[s].feature) { features.append(tree.nodes[s].feature) }
            let size = (1 << splits.count) * features.count
            guard size <= budget else { return nil }
            budget -= size
            var values = [Double](repeating: 0, count: size)
            var goesLeft = [Bool](repeating: false, count: tree.nodes.count)
            for combination in 0..<(1 << splits.count) {
                for (j, s) in splits.enumerated() { goesLeft[s] = combination >> j & 1 == 1 }
                for p in paths.treeStart[t]..<paths.treeStart[t + 1] {
                    let path = paths.paths[p]
                    var pattern: UInt64 = (1 << UInt64(path.elementCount)) &- 1
                    for step in paths.steps[path.stepStart..<(path.stepStart + path.stepCount)]
                    where goesLeft[Int(step.node)] != step.wentLeft {
                        pattern &= ~(1 << UInt64(step.element))
                    }
                    paths.zeroFractions.withUnsafeBufferPointer { zero in
                        PathShapley.factors(zero: zero.baseAddress! + path.elementStart, pattern: pattern,
                                            count: path.elementCount, weights: &weights, out: &factors)
                    }
                    let leafValue = tree.values[Int(path.leaf)]
                    for k in 0..<path.elementCount {
                        let slot = features.firstIndex(of: paths.features[path.elementStart + k])!
                        values[combination * features.count + slot] += factors[k] * leafValue
                    }
                }
            }
            return SplitTable(splits: splits.map(Int32.init), features: features, values: values)
        }
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
        let m = ensemble.featureCount
        let columns = ensemble.outputCount
        let batch = min(rows, Self.batchRows)
        let memoPatterns = 1 << memoElements
        withUnsafeTemporaryAllocation(of: Float.self, capacity: batch * m) { prepared in
        withUnsafeTemporaryAllocation(of: Bool.self, capacity: batch * max(largestTree, 1)) { decisions in
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: memoPatterns) { stamps in
        withUnsafeTemporaryAllocation(of: Double.self, capacity: max(memoPatterns * memoElements, paths.longestPath, 1)) { memo in
        withUnsafeTemporaryAllocation(of: Double.self, capacity: LeafPaths.maxElements + 1) { weights in
            stamps.initialize(repeating: 0)
            var generation: UInt32 = 0
            var start = 0
            while start < rows {
                let count = min(batch, rows - start)
                let xs = prepare(features + start * m, rows: count, into: prepared.baseAddress!)
                let phi = out + start * valuesPerRow
                phi.initialize(repeating: 0, count: count * valuesPerRow)
                addTabulatedTrees(xs, rows: count, iterations: iterations, into: phi)
                forEachPath(xs, rows: count, iterations: iterations, decisions: decisions.baseAddress!,
                            skipTabulatedTrees: true) {
                    path, patterns, leaf, scale in
                    let elements = path.elementCount
                    let memoized = path.table < 0 && elements <= memoElements
                    if memoized {
                        generation &+= 1
                        if generation == 0 {  // wrapped: forget every stamp once
                            stamps.initialize(repeating: 0)
                            generation = 1
                        }
                    }
                    for r in 0..<count {
                        let pattern = patterns(r)
                        let factors: UnsafePointer<Double>
                        if path.table >= 0 {
                            factors = factorTable.withUnsafeBufferPointer { $0.baseAddress! } + path.table + Int(pattern) * elements
                        } else if memoized {
                            let slot = memo.baseAddress! + Int(pattern) * elements
                            if stamps[Int(pattern)] != generation {
                                stamps[Int(pattern)] = generation
                                PathShapley.factors(zero: zeroFractions + path.elementStart, pattern: pattern,
                                                    count: elements, weights: weights.baseAddress!, out: slot)
                            }
                            factors = UnsafePointer(slot)
                        } else {
                            let slot = memo.baseAddress!
                            PathShapley.factors(zero: zeroFractions + path.elementStart, pattern: pattern,
                                                count: elements, weights: weights.baseAddress!, out: slot)
                            factors = UnsafePointer(slot)
                        }
                        let row = phi + r * valuesPerRow
                        for k in 0..<elements where factors[k] != 0 {
                            leaf.add(factors[k] * scale, to: row + Int(featuresPointer[path.elementStart + k]) * columns)
                        }
                    }
                }
                for r in 0..<count { addBias(iterations: iterations, to: phi + r * valuesPerRow + m * columns) }
                start += count
            }
        }
        }
        }
        }
        }
    }

    /// SHAP interaction values: `out[((row * (M + 1) + i) * (M + 1) + j) * K + k]`; row i
    /// and column j == M are zero except [M][M], the bias.
    public func interactionValues(features: UnsafePointer<Float>, rows: Int, iterations: Int,
                                  out: UnsafeMutablePointer<Double>) {
        let m = ensemble.featureCount
        let columns = ensemble.outputCount
        let longest = max(paths.longestPath, 1)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: m) { prepared in
        withUnsafeTemporaryAllocation(of: Bool.self, capacity: max(largestTree, 1)) { decisions in
        withUnsafeTemporaryAllocation(of: Double.self, capacity: longest * longest) { factorBuffer in
        withUnsafeTemporaryAllocation(of: Double.self, capacity: longest + 1) { weights in
        withUnsafeTemporaryAllocation(of: Double.self, capacity: valuesPerRow) { phiBuffer in
            let factors = factorBuffer.baseAddress!
            let phi = phiBuffer.baseAddress!
            for r in 0..<rows {
                let x = prepare(features + r * m, rows: 1, into: prepared.baseAddress!)
                shapValues(features: features + r * m, rows: 1, iterations: iterations, out: phi)
                let target = out + r * interactionValuesPerRow
                target.initialize(repeating: 0, count: interactionValuesPerRow)
                forEachPath(x, rows: 1, iterations: iterations, decisions: decisions.baseAddress!) {
                    path, patterns, leaf, scale in
                    let count = path.elementCount
                    PathShapley.interactionFactors(zero: zeroFractions + path.elementStart, pattern: patterns(0),
                                                   count: count, weights: weights.baseAddress!, out: factors)
                    for i in 0..<count {
                        let fi = Int(featuresPointer[path.elementStart + i])
                        for j in 0..<count where j != i && factors[i * count + j] != 0 {
                            let fj = Int(featuresPointer[path.elementStart + j])
                            leaf.add(factors[i * count + j] * scale, to: target + (fi * (m + 1) + fj) * columns)
                        }
                    }
                }
                // Main effects: what each feature's SHAP value leaves after its interactions.
                for i in 0..<m {
                    for k in 0..<columns {
                        var offDiagonal = 0.0
                        for j in 0..<m where j != i { offDiagonal += target[(i * (m + 1) + j) * columns + k] }
                        target[(i * (m + 1) + i) * columns + k] = phi[i * columns + k] - offDiagonal
                    }
                }
                for k in 0..<columns { target[(m * (m + 1) + m) * columns + k] = phi[m * columns + k] }
            }
        }
        }
        }
        }
        }
    }

    // MARK: - Shared per-batch work

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

    /// The rows as the trees see them (after the model's preprocessing, if any).
    private func prepare(_ rows: UnsafePointer<Float>, rows count: Int,
                         into scratch: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        guard let preprocessing = ensemble.preprocessing else { return rows }
        let m = ensemble.featureCount
        for r in 0..<count { preprocessing.apply(rows + r * m, count: m, into: scratch + r * m) }
        return UnsafePointer(scratch)
    }

    /// Calls `body` for every leaf path of the first `iterations` iterations with a
    /// function giving each row's pattern, the leaf's values and the tree's scale
    /// (1/iterations for models whose raw output is a mean, else 1).
    @inline(__always)
    private func forEachPath(_ xs: UnsafePointer<Float>, rows: Int, iterations: Int,
                             decisions: UnsafeMutablePointer<Bool>, skipTabulatedTrees: Bool = false,
                             _ body: (LeafPaths.Path, (Int) -> UInt64, LeafValue, Double) -> Void) {
        let m = ensemble.featureCount
        let treeCount = iterations * ensemble.treesPerIteration
        let scale = ensemble.averaging.divides(raw: true) ? 1 / Double(iterations) : 1
        ensemble.trees.withUnsafeBufferPointer { trees in
        paths.paths.withUnsafeBufferPointer { allPaths in
        paths.steps.withUnsafeBufferPointer { steps in
            for t in 0..<treeCount where !(skipTabulatedTrees && splitTables[t] != nil) {
                let tree = trees[t]
                let stride = tree.nodes.count
                tree.nodes.withUnsafeBufferPointer { nodes in
                tree.categorySets.withUnsafeBufferPointer { sets in
                tree.values.withUnsafeBufferPointer { values in
                    reachableSplits[t].withUnsafeBufferPointer { splits in
                        for r in 0..<rows {
                            let x = xs + r * m
                            let rowDecisions = decisions + r * stride
                            for i in splits {
                                let node = nodes[Int(i)]
                                rowDecisions[Int(i)] = node.goesLeft(x[Int(node.feature)], categorySets: sets)
                            }
                        }
                    }
                    for p in paths.treeStart[t]..<paths.treeStart[t + 1] {
                        let path = allPaths[p]
                        let pathSteps = steps.baseAddress! + path.stepStart
                        let leaf = LeafValue(values: values.baseAddress! + Int(path.leaf) * tree.leafWidth,
                                             width: tree.leafWidth, outputIndex: tree.outputIndex)
                        body(path, { r in
                            let rowDecisions = decisions + r * stride
                            var pattern: UInt64 = (1 << UInt64(path.elementCount)) &- 1
                            for s in 0..<path.stepCount {
                                let step = pathSteps[s]
                                // Branch-free: which way a row goes is data, not a pattern.
                                let mismatch = unsafeBitCast(rowDecisions[Int(step.node)] != step.wentLeft, to: UInt8.self)
                                pattern &= ~(UInt64(mismatch) << UInt64(step.element))
                            }
                            return pattern
                        }, leaf, scale)
                    }
                }
                }
                }
            }
        }
        }
        }
    }

    /// Adds the contributions of the trees that have a `SplitTable`.
    private func addTabulatedTrees(_ xs: UnsafePointer<Float>, rows: Int, iterations: Int,
                                   into phi: UnsafeMutablePointer<Double>) {
        let m = ensemble.featureCount
        let columns = ensemble.outputCount
        let scale = ensemble.averaging.divides(raw: true) ? 1 / Double(iterations) : 1
        for t in 0..<(iterations * ensemble.treesPerIteration) {
            guard let table = splitTables[t] else { continue }
            let tree = ensemble.trees[t]
            let column = tree.outputIndex
            tree.nodes.withUnsafeBufferPointer { nodes in
            tree.categorySets.withUnsafeBufferPointer { sets in
            table.splits.withUnsafeBufferPointer { splits in
            table.features.withUnsafeBufferPointer { features in
            table.values.withUnsafeBufferPointer { values in
                for r in 0..<rows {
                    let x = xs + r * m
                    var combination = 0
                    for j in 0..<splits.count {
                        let node = nodes[Int(splits[j])]
                        combination |= (node.goesLeft(x[Int(node.feature)], categorySets: sets) ? 1 : 0) << j
                    }
                    let row = phi + r * valuesPerRow + column
                    let contributions = values.baseAddress! + combination * features.count
                    for i in 0..<features.count {
                        row[Int(features[i]) * columns] += contributions[i] * scale
                    }
                }
            }
            }
            }
            }
            }
        }
    }

    /// The bias: the base margin plus each tree's expected value.
    private func addBias(iterations: Int, to bias: UnsafeMutablePointer<Double>) {
        let treeCount = iterations * ensemble.treesPerIteration
        let scale = ensemble.averaging.divides(raw: true) ? 1 / Double(iterations) : 1
        for t in 0..<treeCount {
            let tree = ensemble.trees[t]
            paths.expectations[t].withUnsafeBufferPointer { mean in
                LeafValue(values: mean.baseAddress!, width: tree.leafWidth, outputIndex: tree.outputIndex)
                    .add(scale, to: bias)
            }
        }
        for k in 0..<ensemble.outputCount { bias[k] += ensemble.baseMargin[k] }
    }
}
