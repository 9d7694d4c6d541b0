/// A node as the scorer reads it: 16 bytes, four to a cache line. The two children of a
/// node are adjacent (`right == left + 1`), so a step is `left + goesRight`, no branch.
/// A leaf points to itself with threshold +inf and NaN going left, so the scorer can run
/// every tree for a fixed number of steps (its depth) without testing for leaves.
///
/// In plain trees (numeric splits, NaN follows the default) `feature` indexes a widened
/// row of 2F values, premultiplied by the scorer's block size (the block is stored
/// feature-major): F copies with NaN replaced by -inf, then F with NaN replaced by +inf. A node whose NaN goes left reads the first copy, one whose NaN goes right the
/// second, so `x <= threshold` alone sends missing values the right way. This needs a
/// non-NaN threshold; trees with one take the general path, which reads the raw row.
struct PackedNode {
    var threshold: Float
    var feature: UInt32
    var left: UInt32
    /// Bit 0: NaN goes left. Bit 1: LightGBM zero-as-missing. Bit 2: categorical split,
    /// with the forest-wide category set index in bits 8 and up.
    var flags: UInt32

    static let defaultLeftFlag: UInt32 = 1
    static let zeroIsMissingFlag: UInt32 = 2
    static let categoricalFlag: UInt32 = 4
}

/// Per-tree facts the scorer needs, kept together for one load per tree.
struct CompiledTree {
    var root: UInt32
    var depth: UInt32
    /// First value of this tree in the forest's value arrays; the value of the node at
    /// position `root + i` starts at `valueBase + i * leafWidth`.
    var valueBase: Int
    var leafWidth: Int
    var outputIndex: Int
    var kind: TreeKind
    /// Only plain numeric splits: the fastest walks (vector, eight trees at once) apply.
    var isPlain: Bool { kind == .plain }
    /// For shallow plain trees: where the tree starts in `CompiledForest.shallow`.
    var shallowBase: Int
}

/// How a tree's splits can be tested.
enum TreeKind {
    /// Numeric splits only, each decided by `x' <= threshold` on the widened block.
    case plain
    /// Plain numeric splits plus LightGBM categorical splits over categories 0..<32, whose
    /// set is kept in the threshold's bits and tested without a branch.
    case plainWithCategories
    /// Anything else (zero-as-missing, larger category sets, XGBoost categorical splits):
    /// tested node by node on the raw row.
    case general
}

/// A shallow plain tree padded to a complete binary tree of its depth D (at most 5) and
/// stored in heap order, so that eight rows are evaluated at once with vector
/// arithmetic. As in QuickScorer, every node is tested and a node a row passes to the
/// right rules out the leaves of its left subtree; the row's leaf is the leftmost leaf
/// left standing. The 2^D - 1 tests are independent of each other (no chain of
/// dependent loads), which wins for the depth-limited trees of boosted models. Padding
/// nodes sit below a leaf that ends above depth D; both their subtrees map to that leaf.
struct ShallowTreeNode {
    /// Premultiplied offset into the widened block, as `PackedNode.feature`; for the
    /// 2^D leaf entries after the internal nodes: the leaf's offset from the tree root.
    var feature: UInt32
    /// Finite, and never -0.0 (see `shallowLeaves`).
    var threshold: Float
    /// Bit i set when heap leaf i lies in this node's left subtree.
    var leftLeaves: UInt32
    var padding: UInt32 = 0
}

/// A tree ensemble flattened for scoring: all trees in one node array laid out breadth
/// first with sibling pairs adjacent. Built once at load, immutable afterwards.
public final class CompiledForest: Sendable {
    let nodes: [PackedNode]
    let trees: [CompiledTree]
    let valuesF64: [Double]
    /// The same values in float32, for models (XGBoost) that add leaves in float32.
    let valuesF32: [Float]
    let baseMarginF32: [Float]
    let categoryWords: CategoryBitsets
    /// For tree t: how many consecutive trees from t are plain with one leaf value
    /// (the single-row path walks eight such trees in lockstep).
    let plainRuns: [Int32]
    /// Heap-ordered internal nodes of shallow trees, then for each tree its 2^D leaf
    /// offsets (relative to the tree's root in `nodes`), stored as UInt32 bit patterns.
    let shallow: [ShallowTreeNode]
    public let ensemble: TreeEnsemble

    /// Trees up to this depth are evaluated with vector compares.
    static let maxShallowDepth = 5

    /// `ensemble` must have passed `validate()`.
    public init(_ ensemble: TreeEnsemble) {
        self.ensemble = ensemble
        var nodes: [PackedNode] = []
        var trees: [CompiledTree] = []
        var values: [Double] = []
        var categorySets: [CategorySet] = []
        var shallow: [ShallowTreeNode] = []
        trees.reserveCapacity(ensemble.trees.count)

        for tree in ensemble.trees {
            let root = nodes.count
            let setBase = categorySets.count
            categorySets.append(contentsOf: tree.categorySets)
            // Breadth-first: source node id and its depth, in output order. A node's
            // children are appended together, so they land next to each other.
            var order: [(source: Int, depth: Int)] = [(0, 0)]
            var position = [Int](repeating: -1, count: tree.nodes.count)
            position[0] = 0
            var head = 0
            var depth = 0
            var kind = TreeKind.plain
            while head < order.count {
                let (source, level) = order[head]
                head += 1
                let node = tree.nodes[source]
                if node.isLeaf { continue }
                depth = max(depth, level + 1)
                if !Self.isPlain(node) {
                    let small = Self.smallCategoryMask(node, tree) != nil
                    kind = small && kind != .general ? .plainWithCategories : .general
                }
                position[Int(node.leftChild)] = order.count
                order.append((Int(node.leftChild), level + 1))
                position[Int(node.rightChild)] = order.count
                order.append((Int(node.rightChild), level + 1))
            }
            let featureCount = ensemble.featureCount
            for (index, item) in order.enumerated() {
                let node = tree.nodes[item.source]
                let here = UInt32(root + index)
                if node.isLeaf {
                    nodes.append(PackedNode(threshold: .infinity, feature: 0, left: here,
                                            flags: PackedNode.defaultLeftFlag))
                } else {
                    var flags: UInt32 = node.defaultLeft ? PackedNode.defaultLeftFlag : 0
                    if node.zeroIsMissing { flags |= PackedNode.zeroIsMissingFlag }
                    if node.categorySet >= 0 {
                        flags |= PackedNode.categoricalFlag | UInt32(setBase + Int(node.categorySet)) << 8
                    }
                    var threshold = node.threshold
                    var feature = Int(node.feature)
                    if kind != .general {
                        if let mask = Self.smallCategoryMask(node, tree) {
                            // NaN reads as -inf (first copy): not a category, so it goes right.
                            threshold = Float(bitPattern: mask)
                            feature *= CompiledForest.blockRows
                        } else {
                            feature = (feature + (node.defaultLeft ? 0 : featureCount)) * CompiledForest.blockRows
                        }
                    }
                    nodes.append(PackedNode(threshold: threshold, feature: UInt32(feature),
                                            left: UInt32(root + position[Int(node.leftChild)]),
                                            flags: flags))
                }
            }
            let valueBase = values.count
            for item in order {
                let start = item.source * tree.leafWidth
                values.append(contentsOf: tree.values[start..<start + tree.leafWidth])
            }
            var shallowBase = -1
            if kind == .plain && depth >= 1 && depth <= Self.maxShallowDepth && tree.leafWidth == 1,
               let heap = Self.heapOrder(nodes, root: root, depth: depth) {
                shallowBase = shallow.count
                shallow += heap
            }
            trees.append(CompiledTree(root: UInt32(root), depth: UInt32(depth), valueBase: valueBase,
                                      leafWidth: tree.leafWidth, outputIndex: tree.outputIndex,
                                      kind: kind, shallowBase: shallowBase))
        }
        self.nodes = nodes
        self.trees = trees
        self.valuesF64 = values
        self.valuesF32 = ensemble.accumulatesInFloat32 ? values.map { Float($0) } : []
        self.baseMarginF32 = ensemble.baseMargin.map { Float($0) }
        self.categoryWords = CategoryBitsets(categorySets)
        var runs = [Int32](repeating: 0, count: trees.count)
        for t in trees.indices.reversed() where trees[t].isPlain && trees[t].leafWidth == 1 {
            runs[t] = 1 + (t + 1 < trees.count ? runs[t + 1] : 0)
        }
        self.plainRuns = runs
        self.shallow = shallow
    }

    /// Whether the widened-row test `x' <= threshold` decides `node` exactly. It cannot
    /// for categorical and zero-as-missing splits, a NaN threshold, or a +inf threshold
    /// whose NaN goes right (LightGBM's "missing vs. the rest" split): there the +inf a
    /// NaN becomes would pass the test like a real +inf.
    private static func isPlain(_ node: TreeNode) -> Bool {
        !node.zeroIsMissing && node.categorySet < 0 && !node.threshold.isNaN
            && !(node.threshold == .infinity && !node.defaultLeft)
    }

    /// The category bitset of a LightGBM categorical split over categories 0..<32 (NaN,
    /// negative and larger values all go right there), or nil for any other node.
    private static func smallCategoryMask(_ node: TreeNode, _ tree: DecisionTree) -> UInt32? {
        guard node.categorySet >= 0, !node.zeroIsMissing, !node.defaultLeft else { return nil }
        let set = tree.categorySets[Int(node.categorySet)]
        guard set.rule == .lightgbm, let words = set.bitsetWords(limit: 32) else { return nil }
        return words.first ?? 0
    }

    /// The complete heap-ordered form of the plain tree at `root` (see `ShallowTreeNode`):
    /// 2^depth - 1 internal nodes followed by 2^depth leaf entries; nil when a threshold
    /// is infinite (the vector test needs finite ones).
    private static func heapOrder(_ nodes: [PackedNode], root: Int, depth: Int) -> [ShallowTreeNode]? {
        let internalCount = (1 << depth) - 1
        var at = [Int](repeating: root, count: 2 * internalCount + 1)  // heap slot -> node
        var out: [ShallowTreeNode] = []
        var levelStart = 0
        for level in 0..<depth {
            let span = 1 << (depth - level)  // heap leaves under a node of this level
            for slot in levelStart..<(2 * levelStart + 1) {
                let index = at[slot]
                let node = nodes[index]
                let firstLeaf = (slot - levelStart) * span
                let leftLeaves = UInt32((1 << (span / 2)) - 1) << UInt32(firstLeaf)
                if node.left == UInt32(index) {  // a leaf above the bottom: pad
                    out.append(ShallowTreeNode(feature: 0, threshold: 0, leftLeaves: leftLeaves))
                    at[2 * slot + 1] = index
                    at[2 * slot + 2] = index
                } else {
                    guard node.threshold.isFinite else { return nil }
                    // x <= -0.0 and x <= +0.0 agree; +0.0 keeps the sign test exact.
                    let threshold = node.threshold == 0 ? 0 : node.threshold
                    out.append(ShallowTreeNode(feature: node.feature, threshold: threshold, leftLeaves: leftLeaves))
                    at[2 * slot + 1] = Int(node.left)
                    at[2 * slot + 2] = Int(node.left) + 1
                }
            }
            levelStart = 2 * levelStart + 1
        }
        for slot in internalCount..<(2 * internalCount + 1) {
            out.append(ShallowTreeNode(feature: UInt32(at[slot] - root), threshold: 0, leftLeaves: 0))
        }
        return out
    }
}

/// Every categorical split's set, flattened for the scorer: bitset words in one array
/// (one load and a bit test per split). Sets whose largest category would need a bitset
/// beyond `maxCategory`, or beyond the overall word budget, keep their sorted lists.
struct CategoryBitsets {
    private var words: [UInt32] = []
    private var start: [Int32] = []
    private var count: [Int32] = []
    private var rules: [CategoricalRule] = []
    private var fallback: [Int: CategorySet] = [:]

    static let maxCategory = 1 << 16
    static let wordBudget = 1 << 22

    init(_ sets: [CategorySet]) {
        for (index, set) in sets.enumerated() {
            rules.append(set.rule)
            start.append(Int32(words.count))
            if let bits = set.bitsetWords(limit: Self.maxCategory), words.count + bits.count <= Self.wordBudget {
                words += bits
                count.append(Int32(bits.count))
            } else {
                count.append(0)
                fallback[index] = set
            }
        }
    }

    @inline(__always)
    func goesLeft(_ x: Float, set: Int) -> Bool {
        if let sorted = fallback[set] { return sorted.goesLeft(x) }
        let first = Int(start[set]), size = Int(count[set])
        return CategorySet.goesLeft(x, rule: rules[set]) { category in
            let word = category >> 5
            return word < size && words[first + word] & (1 << UInt32(category & 31)) != 0
        }
    }
}
