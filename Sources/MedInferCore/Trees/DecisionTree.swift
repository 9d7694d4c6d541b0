/// How a categorical split reads its feature value. The two libraries disagree on
/// which side a listed category goes to and on what counts as an invalid category.
public enum CategoricalRule: UInt8, Sendable {
    /// XGBoost: listed categories go right; values < 0 or >= 2^24 go left.
    case xgboost
    /// LightGBM: listed categories go left; NaN and values whose integer part is < 0 go right.
    case lightgbm
}

/// One node of a decision tree in MedInfer's format-independent form. Readers convert
/// every library's split convention to this one.
public struct TreeNode: Sendable, Equatable {
    /// Child node ids within the tree; -1 for a leaf.
    public var leftChild: Int32
    public var rightChild: Int32
    /// Feature tested by an internal node.
    public var feature: Int32
    /// Numeric split: a row goes left when `x <= threshold` (float32 comparison; readers
    /// round the library's threshold so that this is exactly the library's test).
    public var threshold: Float
    /// Where NaN (missing) goes.
    public var defaultLeft: Bool
    /// LightGBM missing_type Zero: values in [-1e-35, 1e-35] also follow `defaultLeft`.
    public var zeroIsMissing: Bool
    /// Index into the tree's `categorySets` for a categorical split; -1 for numeric.
    public var categorySet: Int32
    /// Training weight reaching the node (hessian sum or sample count), for TreeSHAP.
    public var cover: Double

    public var isLeaf: Bool { leftChild < 0 }

    /// The split test of an internal node for feature value `x`: MedInfer's one
    /// definition, used by the scorer's general path and by the explainers.
    @inline(__always)
    public func goesLeft(_ x: Float, categorySets: UnsafeBufferPointer<CategorySet>) -> Bool {
        Self.goesLeft(x, threshold: threshold, defaultLeft: defaultLeft, zeroIsMissing: zeroIsMissing,
                      categorySet: categorySet >= 0 ? categorySets.baseAddress! + Int(categorySet) : nil)
    }

    @inline(__always)
    static func goesLeft(_ x: Float, threshold: Float, defaultLeft: Bool, zeroIsMissing: Bool,
                         categorySet: UnsafePointer<CategorySet>?) -> Bool {
        if x.isNaN { return defaultLeft }
        // LightGBM's kZeroThreshold (1e-35f): such values count as missing too.
        if zeroIsMissing && x >= -1e-35 && x <= 1e-35 { return defaultLeft }
        if let categorySet { return categorySet.pointee.goesLeft(x) }
        return x <= threshold
    }

    public static func leaf(cover: Double = 0) -> TreeNode {
        TreeNode(leftChild: -1, rightChild: -1, feature: 0, threshold: 0, defaultLeft: true,
                 zeroIsMissing: false, categorySet: -1, cover: cover)
    }
}

/// A set of categories of one categorical split. LightGBM files store bitsets, which
/// are kept as they are; XGBoost files list category ids, which are kept as a sorted
/// list, so memory stays proportional to the file even when ids are large (up to 2^24).
public struct CategorySet: Sendable, Equatable {
    enum Storage: Sendable, Equatable {
        case bitset([UInt32])
        case sorted([Int32])
    }
    let storage: Storage
    public var rule: CategoricalRule

    public init(words: [UInt32], rule: CategoricalRule) {
        storage = .bitset(words)
        self.rule = rule
    }

    /// A set of listed category ids (each checked by the reader to be >= 0).
    public init(categories: [Int], rule: CategoricalRule) {
        storage = .sorted(Array(Set(categories.map { Int32(clamping: $0) })).sorted())
        self.rule = rule
    }

    public func contains(_ category: Int) -> Bool {
        guard category >= 0 else { return false }
        switch storage {
        case .bitset(let words):
            let word = category >> 5
            return word < words.count && words[word] & (1 << UInt32(category & 31)) != 0
        case .sorted(let ids):
            var low = 0, high = ids.count
            while low < high {
                let middle = (low + high) / 2
                if Int(ids[middle]) < category { low = middle + 1 } else { high = middle }
            }
            return low < ids.count && Int(ids[low]) == category
        }
    }

    /// Whether a row with feature value `x` (not NaN: NaN follows the node's default)
    /// goes to the left child.
    @inline(__always)
    public func goesLeft(_ x: Float) -> Bool {
        Self.goesLeft(x, rule: rule, contains: contains)
    }

    /// The categorical split rule, with set membership supplied by the caller (the
    /// scorer keeps its own bitsets).
    @inline(__always)
    static func goesLeft(_ x: Float, rule: CategoricalRule, contains: (Int) -> Bool) -> Bool {
        switch rule {
        case .xgboost:
            if x < 0 || x >= 16_777_216 { return true }
            return !contains(Int(x))
        case .lightgbm:
            // LightGBM casts the double to int; values outside Int32 come out negative.
            if !(x > -1) || x >= 2_147_483_648 { return false }
            return contains(Int(x))
        }
    }

    /// The set as bitset words when its largest member is below `limit`, else nil.
    func bitsetWords(limit: Int) -> [UInt32]? {
        switch storage {
        case .bitset(let words):
            return words.count * 32 <= limit ? words : nil
        case .sorted(let ids):
            guard let largest = ids.last, Int(largest) < limit else { return ids.isEmpty ? [] : nil }
            var words = [UInt32](repeating: 0, count: Int(largest) / 32 + 1)
            for id in ids { words[Int(id) / 32] |= 1 << UInt32(id % 32) }
            return words
        }
    }
}

/// A decision tree: node 0 is the root. Each leaf holds `leafWidth` values: one value
/// added to output column `outputIndex`, or one value per output column.
public struct DecisionTree: Sendable {
    public var nodes: [TreeNode]
    /// `nodes.count * leafWidth` values, row-major by node (internal nodes: unused).
    public var values: [Double]
    public var leafWidth: Int
    public var outputIndex: Int
    public var categorySets: [CategorySet]

    public init(nodes: [TreeNode], values: [Double], leafWidth: Int = 1, outputIndex: Int = 0,
                categorySets: [CategorySet] = []) {
        self.nodes = nodes
        self.values = values
        self.leafWidth = leafWidth
        self.outputIndex = outputIndex
        self.categorySets = categorySets
    }
}
