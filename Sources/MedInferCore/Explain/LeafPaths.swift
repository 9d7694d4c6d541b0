/// Every root-to-leaf path of every tree, in the form path-dependent TreeSHAP needs:
/// the distinct features met on the way with their zero fractions (child cover over
/// parent cover, multiplied over repeated splits on one feature), and the splits to
/// test a row against. Built once per model from the IR; immutable.
struct LeafPaths {
    struct Path {
        var tree: Int32
        var leaf: Int32
        /// Distinct features: `elements[elementStart ..< elementStart + elementCount]`.
        var elementStart: Int
        var elementCount: Int
        /// Splits: `steps[stepStart ..< stepStart + stepCount]`.
        var stepStart: Int
        var stepCount: Int
        /// Offset of this path's precomputed factors in `TreeExplainer.factorTable`
        /// (2^elementCount patterns x elementCount), or -1 to compute them per row.
        var table: Int
    }

    struct Step {
        var node: Int32
        var wentLeft: Bool
        var element: UInt8
    }

    /// A path may carry at most this many distinct features (one bit each in a pattern).
    static let maxElements = 63
    /// All paths together may hold at most this many splits (a path repeats its
    /// ancestors, so deep unbalanced trees grow as nodes x depth): 2^26 steps, 512 MiB.
    static let maxTotalSteps = 1 << 26

    var paths: [Path] = []
    var features: [Int32] = []
    var zeroFractions: [Double] = []
    var steps: [Step] = []
    /// Paths of tree t: `paths[treeStart[t] ..< treeStart[t + 1]]`.
    var treeStart: [Int] = [0]
    /// The cover-weighted mean of each tree's leaves, per leaf value column.
    var expectations: [[Double]] = []
    var longestPath = 0

    init(_ ensemble: TreeEnsemble) throws(MedInferError) {
        for (t, tree) in ensemble.trees.enumerated() {
            guard tree.nodes[0].isLeaf || tree.nodes[0].cover > 0 else {
                throw .unsupported("SHAP values need node covers (hessian sums or sample counts), but tree \(t) has a root cover of \(tree.nodes[0].cover); re-save the model with a library version that stores them")
            }
            try addPaths(of: tree, index: t)
            treeStart.append(paths.count)
            expectations.append(Self.expectation(of: tree))
        }
    }

    private mutating func addPaths(of tree: DecisionTree, index t: Int) throws(MedInferError) {
        // Depth-first with an explicit stack; `route` holds the edges from the root to
        // the node being visited (validation bounded the depth).
        var stack: [(node: Int, depth: Int, parent: Int, wentLeft: Bool)] = [(0, 0, -1, true)]
        var route: [(parent: Int, wentLeft: Bool)] = []
        while let (id, depth, parent, wentLeft) = stack.popLast() {
            if depth > 0 {
                route.removeLast(route.count - (depth - 1))
                route.append((parent, wentLeft))
            }
            let node = tree.nodes[id]
            if node.isLeaf {
                try emitPath(tree: tree, index: t, leaf: id, route: route)
                continue
            }
            stack.append((Int(node.rightChild), depth + 1, id, false))
            stack.append((Int(node.leftChild), depth + 1, id, true))
        }
    }

    private mutating func emitPath(tree: DecisionTree, index t: Int, leaf: Int,
                                   route: [(parent: Int, wentLeft: Bool)]) throws(MedInferError) {
        let elementStart = features.count
        let stepStart = steps.count
        var elementOf: [Int32: Int] = [:]
        for edge in route {
            let parent = tree.nodes[edge.parent]
            let child = tree.nodes[Int(edge.wentLeft ? parent.leftChild : parent.rightChild)]
            let fraction = parent.cover > 0 ? child.cover / parent.cover : 0
            let element: Int
            if let existing = elementOf[parent.feature] {
                element = existing
                zeroFractions[elementStart + element] *= fraction
            } else {
                element = features.count - elementStart
                guard element < Self.maxElements else {
                    throw .unsupported("tree \(t): a path splits on more than \(Self.maxElements) distinct features")
                }
                elementOf[parent.feature] = element
                features.append(parent.feature)
                zeroFractions.append(fraction)
            }
            steps.append(Step(node: Int32(edge.parent), wentLeft: edge.wentLeft, element: UInt8(element)))
        }
        guard steps.count <= Self.maxTotalSteps else {
            throw .outOfMemory("tree \(t): the model's root-to-leaf paths hold more than \(Self.maxTotalSteps) splits in all; too large to explain")
        }
        let count = features.count - elementStart
        longestPath = max(longestPath, count)
        paths.append(Path(tree: Int32(t), leaf: Int32(leaf), elementStart: elementStart, elementCount: count,
                          stepStart: stepStart, stepCount: steps.count - stepStart, table: -1))
    }

    /// Cover-weighted mean leaf value, computed bottom-up as XGBoost's node means are.
    private static func expectation(of tree: DecisionTree) -> [Double] {
        let width = tree.leafWidth
        var mean = [Double](repeating: 0, count: tree.nodes.count * width)
        // Children come after parents in no guaranteed order: evaluate by explicit
        // post-order traversal.
        var stack: [(node: Int, expanded: Bool)] = [(0, false)]
        while let (id, expanded) = stack.popLast() {
            let node = tree.nodes[id]
            if node.isLeaf {
                for k in 0..<width { mean[id * width + k] = tree.values[id * width + k] }
            } else if !expanded {
                stack.append((id, true))
                stack.append((Int(node.rightChild), false))
                stack.append((Int(node.leftChild), false))
            } else {
                let l = Int(node.leftChild), r = Int(node.rightChild)
                let cl = tree.nodes[l].cover, cr = tree.nodes[r].cover
                let total = cl + cr
                for k in 0..<width {
                    mean[id * width + k] = total > 0
                        ? (cl * mean[l * width + k] + cr * mean[r * width + k]) / total : 0
                }
            }
        }
        return Array(mean[0..<width])
    }
}
