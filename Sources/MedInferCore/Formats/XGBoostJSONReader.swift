#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads XGBoost's JSON model format (`Booster.save_model("m.json")`, xgboost 1.x-3.x)
/// into a `TreeEnsemble` with XGBoost's exact scoring semantics.
enum XGBoostJSONReader {
    static func read(_ document: JSONDocument) throws(MedInferError) -> TreeEnsemble {
        let learner = try document.root.member("learner")
        try learner.requireObject()
        let parameters = try learner.member("learner_model_param")
        let objective = try learner.member("objective").member("name").string()
        let featureCount = try parameters.member("num_feature").integer(in: 1...Limits.maxFeatures)
        let classCount = try parameters.optionalMember("num_class")?.integer(in: 0...Limits.maxOutputs) ?? 0
        let targetCount = try parameters.optionalMember("num_target")?.integer(in: 1...Limits.maxOutputs) ?? 1
        let outputCount = max(classCount, targetCount, 1)

        let (transform, marginFromBase) = try outputSemantics(objective)

        // Base score: a scalar string in 2.x ("5E-1"), a bracketed vector in 3.x ("[5E-1]"
        // or one value per class/target). Logistic and log-link objectives store it in
        // the output space; the scorer needs it as a margin.
        let baseScores = try parseBaseScore(parameters.member("base_score"))
        guard baseScores.count == 1 || baseScores.count == outputCount else {
            throw .parse("'learner.learner_model_param.base_score' has \(baseScores.count) values for \(outputCount) outputs")
        }
        let baseMargin = (0..<outputCount).map { k in
            marginFromBase(Double(Float(baseScores[baseScores.count == 1 ? 0 : k])))
        }
        guard baseMargin.allSatisfy({ $0.isFinite }) else {
            throw .parse("'learner.learner_model_param.base_score' \(baseScores) has no finite margin for objective '\(objective)' (a probability must lie strictly between 0 and 1, a log-link mean above 0)")
        }

        let booster = try learner.member("gradient_booster")
        let boosterName = try booster.member("name").string()
        var model: JSONValue
        var treeWeights: [Double]? = nil
        switch boosterName {
        case "gbtree":
            model = try booster.member("model")
        case "dart":
            model = try booster.member("gbtree").member("model")
            treeWeights = try booster.member("weight_drop").doubles()
        case "gblinear":
            throw .unsupported("XGBoost gblinear models are linear, not tree ensembles; only gbtree and dart are supported")
        default:
            throw .unsupported("unknown XGBoost booster '\(boosterName)'")
        }
        let treesJSON = try model.member("trees")
        let treeCount = try treesJSON.arrayCount()
        guard treeCount > 0 else { throw .parse("'learner.gradient_booster.model.trees' is empty") }
        guard treeCount <= Limits.maxTrees else {
            throw .outOfMemory("\(treeCount) trees exceed the limit of \(Limits.maxTrees)")
        }
        let treeInfo = try model.member("tree_info").integers(in: 0...(outputCount - 1))
        guard treeInfo.count == treeCount else {
            throw .parse("'tree_info' has \(treeInfo.count) entries for \(treeCount) trees")
        }
        if let weights = treeWeights, weights.count != treeCount {
            throw .parse("'weight_drop' has \(weights.count) entries for \(treeCount) trees")
        }

        // Trees per iteration: from iteration_indptr (2.x+) when present, else classes x
        // parallel trees. Iterations must all have the same size for a tree limit to work.
        let parallel = try model.member("gbtree_model_param").optionalMember("num_parallel_tree")?
            .integer(in: 1...Limits.maxTrees) ?? 1
        var treesPerIteration = parallel * outputCount
        if let indptr = try model.optionalMember("iteration_indptr")?.integers(in: 0...treeCount), indptr.count >= 2 {
            treesPerIteration = indptr[1] - indptr[0]
            for i in 1..<indptr.count where indptr[i] - indptr[i - 1] != treesPerIteration || indptr[i] < indptr[i - 1] {
                throw .unsupported("XGBoost iterations of different sizes ('iteration_indptr' \(indptr[i - 1])...\(indptr[i]))")
            }
            guard indptr.first == 0, indptr.last == treeCount else {
                throw .parse("'iteration_indptr' does not cover the \(treeCount) trees")
            }
        }
        guard treesPerIteration > 0, treeCount % treesPerIteration == 0 else {
            throw .parse("\(treeCount) trees do not divide into iterations of \(treesPerIteration)")
        }
        guard treesPerIteration % outputCount == 0 else {
            throw .parse("iterations of \(treesPerIteration) trees cannot hold one tree per each of \(outputCount) outputs ('iteration_indptr' disagrees with num_class/num_target)")
        }

        var trees: [DecisionTree] = []
        trees.reserveCapacity(treeCount)
        for t in 0..<treeCount {
            do throws(MedInferError) {
                var tree = try readTree(treesJSON.element(t), featureCount: featureCount)
                tree.outputIndex = treeInfo[t]
                if let weights = treeWeights, weights[t] != 1 {
                    // DART scales each tree's output by its weight in float32, as XGBoost does.
                    tree.values = tree.values.map { Double(Float($0) * Float(weights[t])) }
                }
                trees.append(tree)
            } catch {
                throw error.prefixed("tree \(t)")
            }
        }

        var iterationLimit: Int? = nil
        if let attributes = learner.optionalMember("attributes"), attributes.isObject,
           let best = attributes.optionalMember("best_iteration") {
            let bestIteration = try best.integer(in: 0...(treeCount / treesPerIteration - 1))
            iterationLimit = bestIteration + 1
        }

        var names: [String]? = nil
        if let list = learner.optionalMember("feature_names"), list.isArray, list.count > 0 {
            names = try list.strings()
        }
        return TreeEnsemble(
            format: .xgboost, objective: objective, featureCount: featureCount, featureNames: names,
            classCount: classCount > 0 ? classCount : (isBinary(objective) ? 2 : 1),
            outputCount: outputCount, trees: trees, treesPerIteration: treesPerIteration,
            defaultIterationLimit: iterationLimit, baseMargin: baseMargin, averaging: .none,
            accumulatesInFloat32: true, transform: transform)
    }

    private static func isBinary(_ objective: String) -> Bool {
        objective.hasPrefix("binary:")
    }

    /// The output transform and the base-score-to-margin conversion of an objective.
    private static func outputSemantics(_ objective: String) throws(MedInferError)
        -> (OutputTransform, (Double) -> Double)
    {
        let identity: (Double) -> Double = { $0 }
        let logit: (Double) -> Double = { p in Double(-logf(1 / Float(p) - 1)) }
        let logLink: (Double) -> Double = { v in Double(logf(Float(v))) }
        switch objective {
        case "binary:logistic", "reg:logistic":
            return (.sigmoid(scale: 1), logit)
        case "binary:logitraw", "binary:hinge", "reg:squarederror", "reg:squaredlogerror",
             "reg:pseudohubererror", "reg:absoluteerror", "reg:quantileerror", "reg:linear",
             "rank:pairwise", "rank:ndcg", "rank:map":
            return (.identity, identity)
        case "count:poisson", "reg:gamma", "reg:tweedie", "survival:cox":
            return (.exp, logLink)
        case "multi:softprob":
            return (.softmax, identity)
        case "multi:softmax":
            return (.argmax, identity)
        default:
            throw .unsupported("XGBoost objective '\(objective)' is not supported")
        }
    }

    private static func parseBaseScore(_ value: JSONValue) throws(MedInferError) -> [Double] {
        if value.isNumber { return [try value.double()] }
        var text = try value.string()
        if text.hasPrefix("[") && text.hasSuffix("]") {
            text = String(text.dropFirst().dropLast())
        }
        var scores: [Double] = []
        for part in text.split(separator: ",") {
            guard let v = parseDouble(part.trimmingSpaces()), v.isFinite else {
                throw .parse("'\(value.path)': '\(part)' is not a finite number")
            }
            scores.append(v)
        }
        guard !scores.isEmpty else { throw .parse("'\(value.path)' holds no value") }
        return scores
    }

    private static func readTree(_ json: JSONValue, featureCount: Int) throws(MedInferError) -> DecisionTree {
        try json.requireObject()
        let leafVector = try json.optionalMember("tree_param")?.optionalMember("size_leaf_vector")?
            .integer(in: 0...Limits.maxOutputs) ?? 1
        guard leafVector <= 1 else {
            throw .unsupported("vector-leaf trees (multi_strategy=multi_output_tree) are not supported")
        }
        let maxNode = Limits.maxTotalNodes
        let left = try json.member("left_children").integers(in: -1...maxNode)
        let n = left.count
        if let declared = try json.optionalMember("tree_param")?.optionalMember("num_nodes")?.integer(in: 0...maxNode),
           declared != n {
            throw .parse("'num_nodes' says \(declared) but 'left_children' has \(n) entries")
        }
        let right = try json.member("right_children").integers(in: -1...maxNode)
        let features = try json.member("split_indices").integers(in: 0...Int(Int32.max))
        let conditions = try json.member("split_conditions").doubles()
        let defaultLeft = try json.member("default_left").integers(in: 0...1)
        let hessians = try json.optionalMember("sum_hessian")?.doubles() ?? [Double](repeating: 0, count: n)
        let splitTypes = try json.optionalMember("split_type")?.integers(in: 0...1) ?? [Int](repeating: 0, count: n)
        for (name, count) in [("right_children", right.count), ("split_indices", features.count),
                              ("split_conditions", conditions.count), ("default_left", defaultLeft.count),
                              ("sum_hessian", hessians.count), ("split_type", splitTypes.count)] where count != n {
            throw .parse("'\(name)' has \(count) entries, 'left_children' has \(n)")
        }

        // Categorical splits: node ids with a segment into the flat category list.
        var setOfNode: [Int: Int] = [:]
        var categorySets: [CategorySet] = []
        if splitTypes.contains(1) {
            let categories = try json.member("categories").integers(in: 0...16_777_215)
            let catNodes = try json.member("categories_nodes").integers(in: 0...max(n - 1, 0))
            let segments = try json.member("categories_segments").integers(in: 0...categories.count)
            let sizes = try json.member("categories_sizes").integers(in: 0...categories.count)
            guard catNodes.count == segments.count, catNodes.count == sizes.count else {
                throw .parse("'categories_nodes', 'categories_segments' and 'categories_sizes' differ in length")
            }
            for (j, node) in catNodes.enumerated() {
                guard setOfNode[node] == nil else {
                    throw .parse("node \(node) appears more than once in 'categories_nodes'")
                }
                guard segments[j] + sizes[j] <= categories.count else {
                    throw .parse("category segment \(j) runs past the \(categories.count) categories")
                }
                setOfNode[node] = categorySets.count
                categorySets.append(CategorySet(
                    categories: Array(categories[segments[j]..<segments[j] + sizes[j]]), rule: .xgboost))
            }
        }

        var nodes: [TreeNode] = []
        nodes.reserveCapacity(n)
        var values = [Double](repeating: 0, count: n)
        for i in 0..<n {
            if left[i] == -1 {
                guard right[i] == -1 else { throw .parse("node \(i) has only a right child") }
                nodes.append(.leaf(cover: hessians[i]))
                values[i] = conditions[i]
                continue
            }
            guard right[i] >= 0 else { throw .parse("node \(i) has only a left child") }
            guard features[i] < featureCount else {
                throw .parse("node \(i) splits on feature \(features[i]), but the model has \(featureCount) features")
            }
            var categorySet: Int32 = -1
            if splitTypes[i] == 1 {
                guard let set = setOfNode[i] else {
                    throw .parse("node \(i) is categorical but has no entry in 'categories_nodes'")
                }
                categorySet = Int32(set)
            }
            nodes.append(TreeNode(
                leftChild: Int32(left[i]), rightChild: Int32(right[i]), feature: Int32(features[i]),
                threshold: ThresholdRounding.fromStrictLess(Float(conditions[i])),
                defaultLeft: defaultLeft[i] == 1, zeroIsMissing: false, categorySet: categorySet,
                cover: hessians[i]))
        }
        return DecisionTree(nodes: nodes, values: values, categorySets: categorySets)
    }
}

extension Substring {
    func trimmingSpaces() -> Substring {
        var s = self
        while let c = s.first, c == " " || c == "\t" || c == "\r" || c == "\n" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" || c == "\r" || c == "\n" { s = s.dropLast() }
        return s
    }
}
