/// Batch and single-row scoring of a `CompiledForest`.
///
/// Rows are scored in blocks of up to `blockRows`: for each tree, every row of the block
/// walks it before the next tree starts, so a tree's nodes and the block's rows stay in
/// L1. Plain trees (see `PackedNode`) are walked eight rows at a time for a fixed number
/// of branch-free steps, which lets the CPU overlap eight independent chains of loads.
/// Their input is the block "widened" and stored feature-major: value j of row r at
/// `j * blockRows + r`, so eight lanes share one base register and a node's premultiplied
/// feature offset.
extension CompiledForest {
    /// Rows per block; plain-tree feature offsets are premultiplied by it.
    static let blockRows = 64

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
        let block = Self.blockRows
        let treeCount = iterations * ensemble.treesPerIteration
        let divisor = Value(iterations)
        let base = ensemble.baseMargin.map { Value($0) }
        let scaledCount = ensemble.preprocessing == nil ? 1 : block * featureCount

        withUnsafeTemporaryAllocation(of: Value.self, capacity: block * columns) { accumulators in
        withUnsafeTemporaryAllocation(of: Float.self, capacity: scaledCount) { scaledRows in
        withUnsafeTemporaryAllocation(of: Float.self, capacity: block * 2 * featureCount) { widenedRows in
            let acc = accumulators.baseAddress!
            let widened = widenedRows.baseAddress!
            var start = 0
            while start < rows {
                let count = min(block, rows - start)
                var input = features + start * featureCount
                if let preprocessing = ensemble.preprocessing {
                    let scaled = scaledRows.baseAddress!
                    for r in 0..<count {
                        preprocessing.apply(input + r * featureCount, count: featureCount,
                                            into: scaled + r * featureCount)
                    }
                    input = UnsafePointer(scaled)
                }
                for r in 0..<count {
                    for k in 0..<columns { acc[r * columns + k] = base[k] }
                    let row = input + r * featureCount
                    for j in 0..<featureCount {
                        let x = row[j]
                        widened[j * block + r] = x.isNaN ? -.infinity : x
                        widened[(featureCount + j) * block + r] = x.isNaN ? .infinity : x
                    }
                }
                accumulate(input, widened, count, featureCount, treeCount, acc, columns, values)
                let target = out + start * written
                for r in 0..<count {
                    let row = acc + r * columns
                    if ensemble.averaging.divides(raw: raw) {
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
    }

    /// Adds the leaf values of trees [0, treeCount) for `count` rows to `acc`.
    @inline(__always)
    private func accumulate<Value: BinaryFloatingPoint>(
        _ input: UnsafePointer<Float>, _ widened: UnsafePointer<Float>, _ count: Int, _ featureCount: Int,
        _ treeCount: Int, _ acc: UnsafeMutablePointer<Value>, _ columns: Int, _ values: [Value]
    ) {
        nodes.withUnsafeBufferPointer { nodeBuffer in
        values.withUnsafeBufferPointer { valueBuffer in
        trees.withUnsafeBufferPointer { treeBuffer in
        shallow.withUnsafeBufferPointer { shallowBuffer in
            let nodes = nodeBuffer.baseAddress!
            let values = valueBuffer.baseAddress!
            for t in 0..<treeCount {
                let tree = treeBuffer[t]
                let root = tree.root
                let depth = tree.depth
                let leafValues = values + tree.valueBase
                if tree.shallowBase >= 0 {
                    let heap = shallowBuffer.baseAddress! + tree.shallowBase
                    let leafSlots = heap + (1 << Int(depth)) - 1
                    let column = acc + tree.outputIndex
                    var r = 0
                    while r + 8 <= count {
                        let standing = shallowLeaves(heap, depth: depth, widened + r)
                        let row = column + r * columns
                        for lane in 0..<8 {
                            let leaf = standing[lane].trailingZeroBitCount
                            row[lane * columns] += leafValues[Int(leafSlots[leaf].feature)]
                        }
                        r += 8
                    }
                    while r < count {
                        var i = root
                        for _ in 0..<depth { i = plainStep(nodes, i, widened + r) }
                        column[r * columns] += leafValues[Int(i &- root)]
                        r += 1
                    }
                } else if tree.isPlain && tree.leafWidth == 1 {
                    let column = acc + tree.outputIndex
                    var r = 0
                    while r + 8 <= count {
                        let x = widened + r
                        var i0 = root, i1 = root, i2 = root, i3 = root
                        var i4 = root, i5 = root, i6 = root, i7 = root
                        for _ in 0..<depth {
                            i0 = plainStep(nodes, i0, x)
                            i1 = plainStep(nodes, i1, x + 1)
                            i2 = plainStep(nodes, i2, x + 2)
                            i3 = plainStep(nodes, i3, x + 3)
                            i4 = plainStep(nodes, i4, x + 4)
                            i5 = plainStep(nodes, i5, x + 5)
                            i6 = plainStep(nodes, i6, x + 6)
                            i7 = plainStep(nodes, i7, x + 7)
                        }
                        let row = column + r * columns
                        row[0] += leafValues[Int(i0 &- root)]
                        row[columns] += leafValues[Int(i1 &- root)]
                        row[2 * columns] += leafValues[Int(i2 &- root)]
                        row[3 * columns] += leafValues[Int(i3 &- root)]
                        row[4 * columns] += leafValues[Int(i4 &- root)]
                        row[5 * columns] += leafValues[Int(i5 &- root)]
                        row[6 * columns] += leafValues[Int(i6 &- root)]
                        row[7 * columns] += leafValues[Int(i7 &- root)]
                        r += 8
                    }
                    while r < count {
                        var i = root
                        for _ in 0..<depth { i = plainStep(nodes, i, widened + r) }
                        column[r * columns] += leafValues[Int(i &- root)]
                        r += 1
                    }
                } else {
                    for r in 0..<count {
                        var i = root
                        if tree.isPlain {
                            for _ in 0..<depth { i = plainStep(nodes, i, widened + r) }
                        } else {
                            for _ in 0..<depth { i = generalStep(nodes, i, input + r * featureCount) }
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
    }

    /// The heap leaves (0..<2^depth) reached by eight consecutive rows of the widened
    /// block (see `ShallowTreeNode`). A row goes right at a node when `threshold - x` is
    /// negative; x is never NaN in the widened block and thresholds are finite and never
    /// -0.0, so the sign bit of the difference is exactly "x > threshold".
    @inline(__always)
    private func shallowLeaves(_ heap: UnsafePointer<ShallowTreeNode>, depth: UInt32,
                               _ rows: UnsafePointer<Float>) -> SIMD8<Int32> {
        var standing = SIMD8<Int32>(repeating: -1)
        for n in 0..<((1 << Int(depth)) - 1) {
            let node = heap[n]
            let x = UnsafeRawPointer(rows + Int(node.feature)).loadUnaligned(as: SIMD8<Float>.self)
            let difference = SIMD8<Float>(repeating: node.threshold) - x
            let right = unsafeBitCast(difference, to: SIMD8<Int32>.self) &>> 31
            standing &= ~(right & SIMD8<Int32>(repeating: Int32(bitPattern: node.leftLeaves)))
        }
        return standing
    }

    /// One branch-free step through a plain node; `row` points at the row's first value
    /// in the feature-major widened block.
    @inline(__always)
    private func plainStep(_ nodes: UnsafePointer<PackedNode>, _ index: UInt32,
                           _ row: UnsafePointer<Float>) -> UInt32 {
        let node = nodes[Int(index)]
        let goesRight: UInt32 = row[Int(node.feature)] <= node.threshold ? 0 : 1
        return node.left &+ goesRight
    }

    /// One step through any node: zero-as-missing and categorical splits included.
    @inline(__always)
    private func generalStep(_ nodes: UnsafePointer<PackedNode>, _ index: UInt32,
                             _ row: UnsafePointer<Float>) -> UInt32 {
        let node = nodes[Int(index)]
        let goesLeft = categorySets.withUnsafeBufferPointer { sets in
            TreeNode.goesLeft(
                row[Int(node.feature)], threshold: node.threshold,
                defaultLeft: node.flags & PackedNode.defaultLeftFlag != 0,
                zeroIsMissing: node.flags & PackedNode.zeroIsMissingFlag != 0,
                categorySet: node.flags & PackedNode.categoricalFlag != 0 ? sets.baseAddress! + Int(node.flags >> 8) : nil)
        }
        return goesLeft ? node.left : node.left &+ 1
    }
}
