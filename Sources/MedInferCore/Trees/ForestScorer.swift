/// Batch and single-row scoring of a `CompiledForest`.
///
/// Rows are scored in blocks: for each tree, every row of the block walks it before the
/// next tree starts, so a tree's nodes and the block's rows stay in L1. Plain trees
/// (numeric splits only) are walked four rows at a time for a fixed number of
/// branch-free steps, which lets the CPU overlap four independent chains of loads.
extension CompiledForest {
    /// Rows per block: small enough that the block's accumulators stay in L1.
    static func blockRows(outputs: Int) -> Int { max(1, min(64, 8192 / max(outputs, 1))) }

    /// Scores `rows` rows of `features` (row-major, `ensemble.featureCount` columns) with
    /// the first `iterations` iterations and writes `rows * ensemble.outputCount(raw:)`
    /// values to `out`. Arguments must have been validated by the caller.
    public func predict(features: UnsafePointer<Float>, rows: Int, iterations: Int, raw: Bool,
                        out: UnsafeMutablePointer<Double>) {
        if ensemble.accumulatesInFloat32 {
            predict(features, rows, iterations, raw, out, values: valuesF32)
        } else {
            predict(features, rows, iterations, raw, out, values: valuesF64)
        }
    }

    @inline(__always)
    private func predict<Value: BinaryFloatingPoint>(
        _ features: UnsafePointer<Float>, _ rows: Int, _ iterations: Int, _ raw: Bool,
        _ out: UnsafeMutablePointer<Double>, values: [Value]
    ) {
        let columns = ensemble.outputCount
        let featureCount = ensemble.featureCount
        let written = ensemble.outputCount(raw: raw)
        let block = Self.blockRows(outputs: columns)
        let treeCount = iterations * ensemble.treesPerIteration
        let divisor = Value(iterations)
        let base = ensemble.baseMargin.map { Value($0) }

        withUnsafeTemporaryAllocation(of: Value.self, capacity: block * columns) { accumulators in
            let acc = accumulators.baseAddress!
            let scaled = ensemble.preprocessing == nil ? 0 : block * featureCount
            withUnsafeTemporaryAllocation(of: Float.self, capacity: max(scaled, 1)) { scratch in
                var start = 0
                while start < rows {
                    let count = min(block, rows - start)
                    var input = features + start * featureCount
                    if let preprocessing = ensemble.preprocessing {
                        for r in 0..<count {
                            preprocessing.apply(input + r * featureCount, count: featureCount,
                                                into: scratch.baseAddress! + r * featureCount)
                        }
                        input = UnsafePointer(scratch.baseAddress!)
                    }
                    for r in 0..<count {
                        for k in 0..<columns { acc[r * columns + k] = base[k] }
                    }
                    accumulate(input, count, featureCount, treeCount, acc, columns, values)
                    let target = out + start * written
                    for r in 0..<count {
                        let row = acc + r * columns
                        if ensemble.averagesIterations {
                            for k in 0..<columns { row[k] = base[k] + (row[k] - base[k]) / divisor }
                        }
                        if raw {
                            for k in 0..<columns { target[r * written + k] = Double(row[k]) }
                        } else if Value.self == Float.self {
                            ensemble.transform.apply(
                                raw: UnsafeRawPointer(row).assumingMemoryBound(to: Float.self),
                                columns: columns, out: target + r * written)
                        } else {
                            ensemble.transform.apply(
                                raw: UnsafeRawPointer(row).assumingMemoryBound(to: Double.self),
                                columns: columns, out: target + r * written)
                        }
                    }
                    start += count
                }
            }
        }
    }

    /// Adds the leaf values of trees [0, treeCount) for `count` rows to `acc`.
    @inline(__always)
    private func accumulate<Value: BinaryFloatingPoint>(
        _ input: UnsafePointer<Float>, _ count: Int, _ stride: Int, _ treeCount: Int,
        _ acc: UnsafeMutablePointer<Value>, _ columns: Int, _ values: [Value]
    ) {
        nodes.withUnsafeBufferPointer { nodeBuffer in
        values.withUnsafeBufferPointer { valueBuffer in
        trees.withUnsafeBufferPointer { treeBuffer in
            let nodes = nodeBuffer.baseAddress!
            let values = valueBuffer.baseAddress!
            for t in 0..<treeCount {
                let tree = treeBuffer[t]
                let root = tree.root
                let depth = tree.depth
                let leafValues = values + tree.valueBase
                if tree.isPlain && tree.leafWidth == 1 {
                    let column = acc + tree.outputIndex
                    var r = 0
                    while r + 4 <= count {
                        let x0 = input + r * stride, x1 = x0 + stride, x2 = x1 + stride, x3 = x2 + stride
                        var i0 = root, i1 = root, i2 = root, i3 = root
                        for _ in 0..<depth {
                            i0 = plainStep(nodes, i0, x0)
                            i1 = plainStep(nodes, i1, x1)
                            i2 = plainStep(nodes, i2, x2)
                            i3 = plainStep(nodes, i3, x3)
                        }
                        column[r * columns] += leafValues[Int(i0 &- root)]
                        column[(r + 1) * columns] += leafValues[Int(i1 &- root)]
                        column[(r + 2) * columns] += leafValues[Int(i2 &- root)]
                        column[(r + 3) * columns] += leafValues[Int(i3 &- root)]
                        r += 4
                    }
                    while r < count {
                        var i = root
                        for _ in 0..<depth { i = plainStep(nodes, i, input + r * stride) }
                        column[r * columns] += leafValues[Int(i &- root)]
                        r += 1
                    }
                } else {
                    for r in 0..<count {
                        var i = root
                        for _ in 0..<depth {
                            i = tree.isPlain ? plainStep(nodes, i, input + r * stride)
                                             : generalStep(nodes, i, input + r * stride)
                        }
                        let leaf = Int(i &- root) * tree.leafWidth
                        if tree.leafWidth == 1 {
                            acc[r * columns + tree.outputIndex] += leafValues[leaf]
                        } else {
                            for k in 0..<columns { acc[r * columns + k] += leafValues[leaf + k] }
                        }
                    }
                }
            }
        }
        }
        }
    }

    /// One branch-free step through a plain node.
    @inline(__always)
    private func plainStep(_ nodes: UnsafePointer<PackedNode>, _ index: UInt32,
                           _ row: UnsafePointer<Float>) -> UInt32 {
        let node = nodes[Int(index)]
        let x = row[Int(node.feature)]
        let lessEqual: UInt32 = x <= node.threshold ? 1 : 0
        let missingLeft: UInt32 = x.isNaN ? node.flags & PackedNode.defaultLeftFlag : 0
        return node.left &+ ((lessEqual | missingLeft) ^ 1)
    }

    /// One step through any node: zero-as-missing and categorical splits included.
    @inline(__always)
    private func generalStep(_ nodes: UnsafePointer<PackedNode>, _ index: UInt32,
                             _ row: UnsafePointer<Float>) -> UInt32 {
        let node = nodes[Int(index)]
        let x = row[Int(node.feature)]
        let goesLeft: Bool
        if x.isNaN {
            goesLeft = node.flags & PackedNode.defaultLeftFlag != 0
        } else if node.flags & PackedNode.zeroIsMissingFlag != 0 && x >= -1e-35 && x <= 1e-35 {
            goesLeft = node.flags & PackedNode.defaultLeftFlag != 0
        } else if node.flags & PackedNode.categoricalFlag != 0 {
            goesLeft = categorySets[Int(node.flags >> 8)].goesLeft(x)
        } else {
            goesLeft = x <= node.threshold
        }
        return goesLeft ? node.left : node.left &+ 1
    }
}
