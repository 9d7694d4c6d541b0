/// Reads MedInfer's forest JSON (docs/forest-json.md), written by the scikit-learn
/// exporter of the Python binding, into a `TreeEnsemble` with scikit-learn's semantics.
enum ForestJSONReader {
    static func read(_ document: JSONDocument) throws(MedInferError) -> TreeEnsemble {
        let root = document.root
        let version = try root.member("format_version").integer(in: 0...Int(Int32.max))
        guard version == 1 else {
            throw .unsupported("forest JSON format_version \(version); this library reads version 1")
        }
        let modelType = try root.member("model_type").string()
        let featureCount = try root.member("n_features").integer(in: 1...Limits.maxFeatures)
        let classCount = try root.member("n_classes").integer(in: 1...Limits.maxOutputs)
        let outputCount = try root.member("n_outputs").integer(in: 1...Limits.maxOutputs)
        let averages: Bool
        switch try root.member("aggregation").string() {
        case "average": averages = true
        case "sum": averages = false
        case let other: throw .parse("'aggregation' must be \"average\" or \"sum\", got \"\(other)\"")
        }
        let transform: OutputTransform
        switch try root.member("post_transform").string() {
        case "identity": transform = .identity
        case "sigmoid": transform = .sigmoidTwoColumns
        case "softmax": transform = .softmax
        case "exp": transform = .exp
        case let other: throw .parse("'post_transform' \"\(other)\" is not one of identity, sigmoid, softmax, exp")
        }
        let baseMargin = try root.member("base_margin").doubles()
        guard baseMargin.count == outputCount, baseMargin.allSatisfy({ $0.isFinite }) else {
            throw .parse("'base_margin' must hold \(outputCount) finite numbers")
        }

        var names: [String]? = nil
        if let list = root.optionalMember("feature_names"), !list.isNull {
            names = try list.strings()
        }
        let preprocessing = try readPreprocessing(root.optionalMember("preprocessing"), featureCount: featureCount)

        let treesJSON = try root.member("trees")
        let treeCount = try treesJSON.arrayCount()
        guard treeCount <= Limits.maxTrees else {
            throw .outOfMemory("\(treeCount) trees exceed the limit of \(Limits.maxTrees)")
        }
        var trees: [DecisionTree] = []
        trees.reserveCapacity(treeCount)
        for t in 0..<treeCount {
            do throws(MedInferError) {
                trees.append(try readTree(treesJSON.element(t), featureCount: featureCount, outputCount: outputCount))
            } catch {
                throw error.prefixed("trees[\(t)]")
            }
        }
        // Gradient boosting adds one tree per class per stage; forests are one tree per
        // "iteration", so an iteration limit means the first N trees for both.
        let perIteration = averages ? 1 : (trees.allSatisfy { $0.leafWidth == 1 } ? outputCount : 1)
        return TreeEnsemble(
            format: .sklearnForest, objective: modelType, featureCount: featureCount, featureNames: names,
            classCount: classCount, outputCount: outputCount, trees: trees, treesPerIteration: perIteration,
            baseMargin: baseMargin, averaging: averages ? .always : .none, accumulatesInFloat32: false,
            transform: transform, preprocessing: preprocessing)
    }

    private static func readPreprocessing(_ value: JSONValue?, featureCount: Int) throws(MedInferError)
        -> FeaturePreprocessing?
    {
        guard let value, !value.isNull else { return nil }
        func vector(_ key: String, default fallback: Double) throws(MedInferError) -> [Double] {
            guard let member = value.optionalMember(key), !member.isNull else {
                return [Double](repeating: fallback, count: featureCount)
            }
            let numbers = try member.doubles()
            guard numbers.count == featureCount, numbers.allSatisfy({ $0.isFinite }) else {
                throw .parse("'preprocessing.\(key)' must hold \(featureCount) finite numbers")
            }
            return numbers
        }
        switch try value.member("type").string() {
        case "minmax":
            return .minMax(scale: try vector("scale", default: 1), min: try vector("min", default: 0))
        case "standard":
            let scale = try vector("scale", default: 1)
            guard scale.allSatisfy({ $0 != 0 }) else { throw .parse("'preprocessing.scale' contains 0") }
            return .standard(mean: try vector("mean", default: 0), scale: scale)
        case let other:
            throw .unsupported("preprocessing type \"\(other)\" (supported: minmax, standard)")
        }
    }

    private static func readTree(_ json: JSONValue, featureCount: Int, outputCount: Int) throws(MedInferError)
        -> DecisionTree
    {
        try json.requireObject()
        let leafWidth = try json.member("leaf_width").integer(in: 1...Limits.maxOutputs)
        guard leafWidth == 1 || leafWidth == outputCount else {
            throw .parse("'leaf_width' \(leafWidth) is neither 1 nor n_outputs \(outputCount)")
        }
        let outputIndex = try json.member("output_index").integer(in: 0...(outputCount - 1))
        let left = try json.member("children_left").integers(in: -1...Limits.maxTotalNodes)
        let n = left.count
        guard n > 0 else { throw .parse("'children_left' is empty") }
        let right = try json.member("children_right").integers(in: -1...Limits.maxTotalNodes)
        let features = try json.member("feature").integers(in: Int(Int32.min)...Int(Int32.max))
        let thresholds = try json.member("threshold").doubles()
        let missingLeft = try json.member("missing_go_to_left").integers(in: 0...1)
        let cover = try json.member("weighted_n_node_samples").doubles()
        let values = try json.member("value").doubles()
        for (name, count) in [("children_right", right.count), ("feature", features.count),
                              ("threshold", thresholds.count), ("missing_go_to_left", missingLeft.count),
                              ("weighted_n_node_samples", cover.count)] where count != n {
            throw .parse("'\(name)' has \(count) entries, 'children_left' has \(n)")
        }
        guard values.count == n * leafWidth else {
            throw .parse("'value' has \(values.count) entries, expected \(n) nodes x \(leafWidth)")
        }
        var nodes: [TreeNode] = []
        nodes.reserveCapacity(n)
        for i in 0..<n {
            if left[i] == -1 || right[i] == -1 {
                guard left[i] == right[i] else { throw .parse("node \(i) has only one child") }
                nodes.append(.leaf(cover: cover[i]))
                continue
            }
            guard features[i] >= 0, features[i] < featureCount else {
                throw .parse("node \(i) splits on feature \(features[i]), but the model has \(featureCount) features")
            }
            nodes.append(TreeNode(
                leftChild: Int32(left[i]), rightChild: Int32(right[i]), feature: Int32(features[i]),
                threshold: ThresholdRounding.fromLessEqual(thresholds[i]), defaultLeft: missingLeft[i] == 1,
                zeroIsMissing: false, categorySet: -1, cover: cover[i]))
        }
        return DecisionTree(nodes: nodes, values: values, leafWidth: leafWidth, outputIndex: outputIndex)
    }
}
