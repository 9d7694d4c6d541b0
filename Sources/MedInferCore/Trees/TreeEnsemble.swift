/// The library a model came from.
public enum ModelFormat: Int32, Sendable {
    case xgboost = 1
    case lightgbm = 2
    case sklearnForest = 3
}

/// When the sum of tree outputs is divided by the number of iterations used.
public enum Averaging: Sendable {
    case none
    /// LightGBM average_output (random-forest mode): the raw score is the sum, the
    /// prediction transforms the mean.
    case beforeTransform
    /// scikit-learn forests: raw and transformed outputs are both the mean.
    case always

    func divides(raw: Bool) -> Bool {
        switch self {
        case .none: return false
        case .beforeTransform: return !raw
        case .always: return true
        }
    }
}

/// A tree ensemble in MedInfer's one intermediate representation. Every reader
/// produces it; the scorer (and the explainers) consume it and never look at formats.
public struct TreeEnsemble: Sendable {
    public var format: ModelFormat
    /// The objective as the training library names it.
    public var objective: String
    public var featureCount: Int
    public var featureNames: [String]?
    /// 1 for regression, K for K-class classification (2 for binary).
    public var classCount: Int
    /// Raw margin columns per row.
    public var outputCount: Int
    public var trees: [DecisionTree]
    /// Trees in one boosting iteration; iteration i holds trees [i*n, (i+1)*n).
    public var treesPerIteration: Int
    /// Iterations used when the caller does not choose (best_iteration + 1, or all).
    public var defaultIterationLimit: Int
    /// Raw margin every row starts from, one value per output column.
    public var baseMargin: [Double]
    public var averaging: Averaging
    /// XGBoost adds leaf values in float32; the others in double.
    public var accumulatesInFloat32: Bool
    public var transform: OutputTransform
    public var preprocessing: FeaturePreprocessing?

    public init(format: ModelFormat, objective: String, featureCount: Int, featureNames: [String]?,
                classCount: Int, outputCount: Int, trees: [DecisionTree], treesPerIteration: Int,
                defaultIterationLimit: Int? = nil, baseMargin: [Double], averaging: Averaging,
                accumulatesInFloat32: Bool, transform: OutputTransform,
                preprocessing: FeaturePreprocessing? = nil) {
        self.format = format
        self.objective = objective
        self.featureCount = featureCount
        self.featureNames = featureNames
        self.classCount = classCount
        self.outputCount = outputCount
        self.trees = trees
        self.treesPerIteration = treesPerIteration
        self.defaultIterationLimit = defaultIterationLimit ?? 0
        self.baseMargin = baseMargin
        self.averaging = averaging
        self.accumulatesInFloat32 = accumulatesInFloat32
        self.transform = transform
        self.preprocessing = preprocessing
        if defaultIterationLimit == nil { self.defaultIterationLimit = iterationCount }
    }

    public var iterationCount: Int {
        treesPerIteration > 0 ? trees.count / treesPerIteration : 0
    }

    /// Values per row that prediction writes for the given output kind.
    public func outputCount(raw: Bool) -> Int {
        raw ? outputCount : transform.outputCount(rawColumns: outputCount)
    }

    /// Checks everything the scorer relies on, so that no later index can trap: sizes,
    /// references, tree shape (no node reached twice from the root, so no cycles and no
    /// sharing; unreachable nodes, such as XGBoost's deleted ones, are ignored), depth, feature indices and category sets.
    public func validate() throws(MedInferError) {
        guard featureCount > 0, featureCount <= Limits.maxFeatures else {
            throw .parse("feature count \(featureCount) is outside 1...\(Limits.maxFeatures)")
        }
        if let names = featureNames, names.count != featureCount {
            throw .parse("\(names.count) feature names for \(featureCount) features")
        }
        guard outputCount > 0, outputCount <= Limits.maxOutputs else {
            throw .parse("output count \(outputCount) is outside 1...\(Limits.maxOutputs)")
        }
        guard baseMargin.count == outputCount else {
            throw .parse("base margin has \(baseMargin.count) values for \(outputCount) outputs")
        }
        guard !trees.isEmpty else { throw .parse("the model has no trees") }
        guard trees.count <= Limits.maxTrees else {
            throw .outOfMemory("\(trees.count) trees exceed the limit of \(Limits.maxTrees)")
        }
        guard treesPerIteration > 0, trees.count % treesPerIteration == 0 else {
            throw .parse("\(trees.count) trees do not divide into iterations of \(treesPerIteration)")
        }
        guard defaultIterationLimit >= 1, defaultIterationLimit <= iterationCount else {
            throw .parse("default iteration limit \(defaultIterationLimit) is outside 1...\(iterationCount)")
        }
        if transform == .sigmoidTwoColumns && outputCount != 1 {
            throw .parse("a two-column sigmoid needs exactly one raw output, got \(outputCount)")
        }
        switch preprocessing {
        case .minMax(let a, let b)?, .standard(let a, let b)?:
            guard a.count == featureCount, b.count == featureCount else {
                throw .parse("preprocessing has \(a.count) and \(b.count) values for \(featureCount) features")
            }
        case .zeroTinyValues?, nil: break
        }
        var totalNodes = 0
        var totalCategorySets = 0
        for (t, tree) in trees.enumerated() {
            totalNodes += tree.nodes.count
            totalCategorySets += tree.categorySets.count
            guard totalCategorySets < 1 << 24 else {
                throw .outOfMemory("more than \(1 << 24) categorical splits in all trees")
            }
            guard totalNodes <= Limits.maxTotalNodes else {
                throw .outOfMemory("more than \(Limits.maxTotalNodes) nodes in all trees")
            }
            do throws(MedInferError) {
                try validate(tree)
            } catch {
                throw error.prefixed("tree \(t)")
            }
        }
    }

    private func validate(_ tree: DecisionTree) throws(MedInferError) {
        let n = tree.nodes.count
        guard n > 0 else { throw .parse("the tree has no nodes") }
        guard tree.leafWidth == 1 || tree.leafWidth == outputCount else {
            throw .parse("leaf width \(tree.leafWidth) is neither 1 nor the output count \(outputCount)")
        }
        guard tree.outputIndex >= 0, tree.outputIndex < outputCount else {
            throw .parse("output index \(tree.outputIndex) is outside 0..<\(outputCount)")
        }
        guard tree.values.count == n * tree.leafWidth else {
            throw .parse("\(tree.values.count) leaf values for \(n) nodes of width \(tree.leafWidth)")
        }
        for (id, node) in tree.nodes.enumerated() where node.isLeaf {
            for k in 0..<tree.leafWidth where !tree.values[id * tree.leafWidth + k].isFinite {
                throw .parse("leaf \(id) has the value \(tree.values[id * tree.leafWidth + k]); leaf values must be finite")
            }
        }
        // Walk from the root with an explicit stack: each node must be reached once.
        var seen = [Bool](repeating: false, count: n)
        var stack: [(node: Int, depth: Int)] = [(0, 0)]
        seen[0] = true
        while let (id, depth) = stack.popLast() {
            let node = tree.nodes[id]
            if node.isLeaf { continue }
            guard depth < Limits.maxTreeDepth else {
                throw .unsupported("node \(id) is deeper than \(Limits.maxTreeDepth) levels")
            }
            guard node.feature >= 0, Int(node.feature) < featureCount else {
                throw .parse("node \(id) splits on feature \(node.feature), but the model has \(featureCount) features")
            }
            if node.categorySet >= 0 {
                guard Int(node.categorySet) < tree.categorySets.count else {
                    throw .parse("node \(id) refers to category set \(node.categorySet) of \(tree.categorySets.count)")
                }
            }
            for child in [node.leftChild, node.rightChild] {
                guard child >= 0, Int(child) < n else {
                    throw .parse("node \(id) has child \(child), outside 0..<\(n)")
                }
                guard !seen[Int(child)] else {
                    throw .parse("node \(child) is reached twice (a cycle or a shared subtree), via node \(id)")
                }
                seen[Int(child)] = true
                stack.append((Int(child), depth + 1))
            }
        }
    }
}
