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
            predict(features, rows, iterations, raw, out, values: valuesF32, base: baseMarginF32)
        } else {
            predict(features, rows, iterations, raw, out, values: valuesF64, base: ensemble.baseMargin)
        }
    }

    @inline(__always)
    private func predict<Value: BinaryFloatingPoint>(
        _ features: UnsafePointer<Float>, _ rows: Int, _ iterations: Int, _ raw: Bool,
        _ out: UnsafeMutablePointer<Double>, values: [Value], base: [Value]
    ) {
        let columns = ensemble.outputCount
        let featureCount = ensemble.featureCount
        let written = ensemble.outputCount(raw: raw)
        let block = Self.blockRows
        let treeCount = iterations * ensemble.treesPerIteration
        let divisor = Value(iterations)
        let scaledCount = ensemble.preprocessing == nil ? 1 : block * featureCount

        // One scratch area per thread: accumulators, scaled rows, widened block.
        let accBytes = (block * columns * MemoryLayout<Value>.stride + 63) & ~63
        let scaledBytes = (scaledCount * MemoryLayout<Float>.stride + 63) & ~63
        let widenedBytes = block * 2 * featureCount * MemoryLayout<Float>.stride
        ThreadScratch.withBuffer(bytes: accBytes + scaledBytes + widenedBytes) { scratch in
            let acc = scratch.bindMemory(to: Value.self, capacity: block * columns)
            let scaledRows = UnsafeMutableBufferPointer(
                start: (scratch + accBytes).bindMemory(to: Float.self, capacity: scaledCount), count: scaledCount)
            let widened = (scratch + accBytes + scaledBytes).bindMemory(to: Float.self, capacity: block * 2 * featureCount)
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
            // Rows in groups of eight walk each tree in lockstep; the rest (a single-row
            // call is all rest) walk eight trees at a time instead.
            let lockstepRows = count & ~7
            if lockstepRows < count {
                walkTailRows(lockstepRows..<count, treeCount, treeBuffer, nodes, values, input, widened,
                             featureCount, acc, columns)
            }
            let count = lockstepRows
            for t in 0..<(count > 0 ? treeCount : 0) {
                let tree = treeBuffer[t]
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
                } else if tree.kind == .plain {
                    let walker = PlainWalker(nodes: nodes, widened: widened)
                    walkLockstep(walker, tree, count, acc, columns, leafValues)
                } else if tree.kind == .plainWithCategories {
                    let walker = SmallCategoryWalker(nodes: nodes, widened: widened)
                    walkLockstep(walker, tree, count, acc, columns, leafValues)
                } else {
                    let walker = GeneralWalker(nodes: nodes, input: input, stride: featureCount, forest: self)
                    walkLockstep(walker, tree, count, acc, columns, leafValues)
                }
            }
        }
        }
        }
        }
    }

    /// Scores `rows` one row at a time, walking runs of eight plain single-column trees in
    /// lockstep (their leaves are added in tree order, which float32 sums depend on).
    @inline(__always)
    private func walkTailRows<Value: BinaryFloatingPoint>(
        _ rows: Range<Int>, _ treeCount: Int, _ trees: UnsafeBufferPointer<CompiledTree>,
        _ nodes: UnsafePointer<PackedNode>, _ values: UnsafePointer<Value>, _ input: UnsafePointer<Float>,
        _ widened: UnsafePointer<Float>, _ featureCount: Int, _ acc: UnsafeMutablePointer<Value>, _ columns: Int
    ) {
        let plain = PlainWalker(nodes: nodes, widened: widened)
        let general = GeneralWalker(nodes: nodes, input: input, stride: featureCount, forest: self)
        plainRuns.withUnsafeBufferPointer { runs in
            for r in rows {
                let row = acc + r * columns
                // One output column (the common case): keep the running sum in a register
                // instead of a store-to-load chain through memory; same order of adds.
                var total = row[0]
                defer { if columns == 1 { row[0] = total } }
                var t = 0
                while t < treeCount {
                    if t + 8 <= treeCount && runs[t] >= 8 {
                        var index = (trees[t].root, trees[t + 1].root, trees[t + 2].root, trees[t + 3].root,
                                     trees[t + 4].root, trees[t + 5].root, trees[t + 6].root, trees[t + 7].root)
                        var depth: UInt32 = 0
                        for k in 0..<8 { depth = max(depth, trees[t + k].depth) }
                        for _ in 0..<depth {  // leaves loop on themselves: extra steps are harmless
                            index.0 = plain.step(index.0, r)
                            index.1 = plain.step(index.1, r)
                            index.2 = plain.step(index.2, r)
                            index.3 = plain.step(index.3, r)
                            index.4 = plain.step(index.4, r)
                            index.5 = plain.step(index.5, r)
                            index.6 = plain.step(index.6, r)
                            index.7 = plain.step(index.7, r)
                        }
                        withUnsafeBytes(of: index) { leaves in
                            for k in 0..<8 {
                                let tree = trees[t + k]
                                let leaf = leaves.load(fromByteOffset: k * 4, as: UInt32.self)
                                let value = values[tree.valueBase + Int(leaf &- tree.root)]
                                if columns == 1 { total += value } else { row[tree.outputIndex] += value }
                            }
                        }
                        t += 8
                        continue
                    }
                    let tree = trees[t]
                    var leaf = tree.root
                    switch tree.kind {
                    case .plain:
                        for _ in 0..<tree.depth { leaf = plain.step(leaf, r) }
                    case .plainWithCategories:
                        let walker = SmallCategoryWalker(nodes: nodes, widened: widened)
                        for _ in 0..<tree.depth { leaf = walker.step(leaf, r) }
                    case .general:
                        for _ in 0..<tree.depth { leaf = general.step(leaf, r) }
                    }
                    let leafValues = values + tree.valueBase + Int(leaf &- tree.root) * tree.leafWidth
                    if columns == 1 {
                        total += leafValues[0]
                    } else if tree.leafWidth == 1 {
                        row[tree.outputIndex] += leafValues[0]
                    } else {
                        for k in 0..<columns { row[k] += leafValues[k] }
                    }
                    t += 1
                }
            }
        }
    }

    /// Walks one tree for `count` rows, eight at a time in lockstep (independent chains
    /// the CPU overlaps), and adds each row's leaf to its accumulators.
    @inline(__always)
    private func walkLockstep<Walker: TreeWalker, Value: BinaryFloatingPoint>(
        _ walker: Walker, _ tree: CompiledTree, _ count: Int, _ acc: UnsafeMutablePointer<Value>,
        _ columns: Int, _ leafValues: UnsafePointer<Value>
    ) {
        let root = tree.root
        let depth = tree.depth
        @inline(__always) func add(_ leaf: UInt32, _ r: Int) {
            let row = acc + r * columns
            if tree.leafWidth == 1 {
                row[tree.outputIndex] += leafValues[Int(leaf &- root)]
            } else {
                let values = leafValues + Int(leaf &- root) * tree.leafWidth
                for k in 0..<columns { row[k] += values[k] }
            }
        }
        var r = 0
        while r + 8 <= count {
            var i0 = root, i1 = root, i2 = root, i3 = root
            var i4 = root, i5 = root, i6 = root, i7 = root
            for _ in 0..<depth {
                i0 = walker.step(i0, r)
                i1 = walker.step(i1, r + 1)
                i2 = walker.step(i2, r + 2)
                i3 = walker.step(i3, r + 3)
                i4 = walker.step(i4, r + 4)
                i5 = walker.step(i5, r + 5)
                i6 = walker.step(i6, r + 6)
                i7 = walker.step(i7, r + 7)
            }
            add(i0, r); add(i1, r + 1); add(i2, r + 2); add(i3, r + 3)
            add(i4, r + 4); add(i5, r + 5); add(i6, r + 6); add(i7, r + 7)
            r += 8
        }
        while r < count {
            var i = root
            for _ in 0..<depth { i = walker.step(i, r) }
            add(i, r)
            r += 1
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

}

/// One step of a row through a compiled tree: from node `index` to the child the row
/// takes (a leaf maps to itself).
protocol TreeWalker {
    func step(_ index: UInt32, _ row: Int) -> UInt32
}

/// Plain nodes over the feature-major widened block: one load, one compare.
struct PlainWalker: TreeWalker {
    let nodes: UnsafePointer<PackedNode>
    let widened: UnsafePointer<Float>

    @inline(__always)
    func step(_ index: UInt32, _ row: Int) -> UInt32 {
        let node = nodes[Int(index)]
        let goesRight: UInt32 = widened[row &+ Int(node.feature)] <= node.threshold ? 0 : 1
        return node.left &+ goesRight
    }
}

/// Plain nodes, and LightGBM categorical nodes over categories 0..<32 whose bitset sits
/// in the threshold's bits: both tests are computed and one is selected, no branch.
struct SmallCategoryWalker: TreeWalker {
    let nodes: UnsafePointer<PackedNode>
    let widened: UnsafePointer<Float>

    @inline(__always)
    func step(_ index: UInt32, _ row: Int) -> UInt32 {
        let node = nodes[Int(index)]
        let x = widened[row &+ Int(node.feature)]
        let numericLeft = x <= node.threshold
        // LightGBM truncates to int: values in (-1, 32) are categories 0...31.
        let inRange = x > -1 && x < 32
        let category = UInt32(truncatingIfNeeded: Int32(inRange ? x : 0))
        let categoryLeft = inRange && (node.threshold.bitPattern >> category) & 1 == 1
        let goesLeft = node.flags & PackedNode.categoricalFlag != 0 ? categoryLeft : numericLeft
        return node.left &+ (goesLeft ? 0 : 1)
    }
}

/// Any node, over the row-major input: zero-as-missing and categorical splits included.
struct GeneralWalker: TreeWalker {
    let nodes: UnsafePointer<PackedNode>
    let input: UnsafePointer<Float>
    let stride: Int
    let forest: CompiledForest

    @inline(__always)
    func step(_ index: UInt32, _ row: Int) -> UInt32 {
        let node = nodes[Int(index)]
        let x = input[row &* stride &+ Int(node.feature)]
        let goesLeft: Bool
        if node.flags & PackedNode.categoricalFlag != 0 && !x.isNaN {
            goesLeft = forest.categoryWords.goesLeft(x, set: Int(node.flags >> 8))
        } else {
            goesLeft = TreeNode.goesLeft(x, threshold: node.threshold,
                                         defaultLeft: node.flags & PackedNode.defaultLeftFlag != 0,
                                         zeroIsMissing: node.flags & PackedNode.zeroIsMissingFlag != 0,
                                         categorySet: nil)
        }
        return goesLeft ? node.left : node.left &+ 1
    }
}
