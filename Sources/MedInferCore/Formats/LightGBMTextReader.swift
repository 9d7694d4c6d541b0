/// Reads LightGBM's text model format (`Booster.save_model("m.txt")`, v3/v4) into a
/// `TreeEnsemble` with LightGBM's exact decision rules (decision_type bit flags,
/// missing_type None/Zero/NaN, categorical bitsets, average_output).
enum LightGBMTextReader {
    /// Key/value lines of one section ("key=value"; a bare key maps to "").
    private typealias Section = [String: (line: Int, value: Substring)]

    static func read(_ bytes: UnsafeRawBufferPointer) throws(MedInferError) -> TreeEnsemble {
        let text = String(decoding: bytes, as: UTF8.self)
        var sections: [Section] = [[:]]
        var sawEndOfTrees = false
        var lineNumber = 0
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            lineNumber += 1
            if line == "end of trees" { sawEndOfTrees = true; break }
            if line.hasPrefix("Tree=") { sections.append([:]) }
            if line.isEmpty { continue }
            if let equals = line.firstIndex(of: "=") {
                sections[sections.count - 1][String(line[..<equals])] = (lineNumber, line[line.index(after: equals)...])
            } else {
                sections[sections.count - 1][String(line)] = (lineNumber, "")
            }
        }
        let header = sections[0]
        guard header["tree"] != nil || header["version"] != nil else {
            throw .parse("not a LightGBM text model (no 'tree' header line)")
        }
        guard sawEndOfTrees else {
            throw .parse("truncated LightGBM model: no 'end of trees' line")
        }
        let classCount = try integer(header, "num_class", in: 1...Limits.maxOutputs, default: 1)
        let treesPerIteration = try integer(header, "num_tree_per_iteration", in: 1...Limits.maxOutputs,
                                            default: classCount)
        guard treesPerIteration == classCount else {
            throw .unsupported("num_tree_per_iteration \(treesPerIteration) differs from num_class \(classCount)")
        }
        let featureCount = try integer(header, "max_feature_idx", in: 0...(Limits.maxFeatures - 1)) + 1
        let objective = header["objective"].map { String($0.value) } ?? ""
        let transform = try outputTransform(objective)
        var names: [String]? = nil
        if let list = header["feature_names"] {
            let parts = list.value.split(separator: " ").map(String.init)
            guard parts.count == featureCount else {
                throw .parse("line \(list.line): \(parts.count) feature names for \(featureCount) features")
            }
            names = parts
        }

        let treeSections = sections.dropFirst()
        guard !treeSections.isEmpty else { throw .parse("the model has no trees") }
        guard treeSections.count <= Limits.maxTrees else {
            throw .outOfMemory("\(treeSections.count) trees exceed the limit of \(Limits.maxTrees)")
        }
        var trees: [DecisionTree] = []
        trees.reserveCapacity(treeSections.count)
        for (t, section) in treeSections.enumerated() {
            do throws(MedInferError) {
                var tree = try readTree(section, featureCount: featureCount)
                tree.outputIndex = t % treesPerIteration
                trees.append(tree)
            } catch {
                throw error.prefixed("Tree=\(t)")
            }
        }
        let isClassifier = objective.hasPrefix("binary") || objective.hasPrefix("multiclass")
        return TreeEnsemble(
            format: .lightgbm, objective: objective, featureCount: featureCount, featureNames: names,
            classCount: objective.hasPrefix("binary") ? 2 : (isClassifier ? classCount : 1),
            outputCount: classCount, trees: trees, treesPerIteration: treesPerIteration,
            baseMargin: [Double](repeating: 0, count: classCount),
            averaging: header["average_output"] != nil ? .beforeTransform : .none,
            accumulatesInFloat32: false, transform: transform, preprocessing: .zeroTinyValues)
    }

    private static func outputTransform(_ objective: String) throws(MedInferError) -> OutputTransform {
        let words = objective.split(separator: " ")
        let name = words.first.map(String.init) ?? ""
        var sigmoid = 1.0
        for word in words where word.hasPrefix("sigmoid:") {
            guard let value = parseDouble(word.dropFirst("sigmoid:".count)), value.isFinite, value > 0 else {
                throw .parse("objective '\(objective)': bad sigmoid parameter")
            }
            sigmoid = value
        }
        switch name {
        case "binary", "multiclassova":
            return .sigmoid(scale: sigmoid)
        case "cross_entropy":
            return .sigmoid(scale: 1)
        case "multiclass":
            return .softmax
        case "poisson", "gamma", "tweedie":
            return .exp
        case "", "regression", "regression_l1", "huber", "fair", "quantile", "mape",
             "lambdarank", "rank_xendcg", "custom":
            return words.contains("sqrt") ? .signedSquare : .identity
        default:
            throw .unsupported("LightGBM objective '\(objective)' is not supported")
        }
    }

    private static func readTree(_ section: Section, featureCount: Int) throws(MedInferError) -> DecisionTree {
        let leafCount = try integer(section, "num_leaves", in: 1...(Limits.maxTotalNodes / 2))
        if let linear = section["is_linear"], linear.value != "0" {
            throw .unsupported("linear trees (linear_tree=true) are not supported")
        }
        let leafValues = try numbers(section, "leaf_value", count: leafCount)
        let leafCounts = try section["leaf_count"] != nil
            ? numbers(section, "leaf_count", count: leafCount) : [Double](repeating: 0, count: leafCount)
        let internalCount = leafCount - 1
        // Node ids: internal nodes first (0..<L-1), then leaves.
        var nodes: [TreeNode] = []
        var values = [Double](repeating: 0, count: leafCount + internalCount)
        if internalCount == 0 {
            nodes = [.leaf(cover: leafCounts[0])]
            values[0] = leafValues[0]
            return DecisionTree(nodes: nodes, values: values)
        }
        let features = try integers(section, "split_feature", count: internalCount, in: 0...(featureCount - 1))
        let thresholds = try numbers(section, "threshold", count: internalCount)
        let decisionTypes = try integers(section, "decision_type", count: internalCount, in: 0...255)
        let maxChild = internalCount - 1
        let left = try integers(section, "left_child", count: internalCount, in: -leafCount...maxChild)
        let right = try integers(section, "right_child", count: internalCount, in: -leafCount...maxChild)
        let covers = try section["internal_count"] != nil
            ? numbers(section, "internal_count", count: internalCount) : [Double](repeating: 0, count: internalCount)

        var categorySets: [CategorySet] = []
        let categoricalCount = try integer(section, "num_cat", in: 0...internalCount, default: 0)
        if categoricalCount > 0 {
            let boundaries = try integers(section, "cat_boundaries", count: categoricalCount + 1,
                                          in: 0...(Limits.maxTotalNodes))
            let words = try numbers(section, "cat_threshold", count: boundaries[categoricalCount])
            for i in 0..<categoricalCount {
                guard boundaries[i] <= boundaries[i + 1] else {
                    throw .parse("'cat_boundaries' decreases at \(i)")
                }
                var set: [UInt32] = []
                for w in boundaries[i]..<boundaries[i + 1] {
                    guard words[w] >= 0, words[w] <= Double(UInt32.max), words[w] == words[w].rounded() else {
                        throw .parse("'cat_threshold' entry \(w) is not a 32-bit word")
                    }
                    set.append(UInt32(words[w]))
                }
                categorySets.append(CategorySet(words: set, rule: .lightgbm))
            }
        }

        func nodeID(_ child: Int) -> Int32 { Int32(child >= 0 ? child : internalCount + (-child - 1)) }
        for i in 0..<internalCount {
            let decision = decisionTypes[i]
            let isCategorical = decision & 1 != 0
            let storedDefaultLeft = decision & 2 != 0
            let missingType = (decision >> 2) & 3
            var node = TreeNode(leftChild: nodeID(left[i]), rightChild: nodeID(right[i]),
                                feature: Int32(features[i]), threshold: 0, defaultLeft: false,
                                zeroIsMissing: false, categorySet: -1, cover: covers[i])
            if isCategorical {
                let index = thresholds[i]
                guard index >= 0, index < Double(categoricalCount), index == index.rounded() else {
                    throw .parse("node \(i): categorical threshold \(index) is not a category set index below \(categoricalCount)")
                }
                node.categorySet = Int32(index)
                node.defaultLeft = false  // LightGBM sends NaN right at categorical splits
            } else {
                node.threshold = ThresholdRounding.fromLessEqual(thresholds[i])
                switch missingType {
                case 0:  // None: NaN is scored as 0.0
                    node.defaultLeft = 0.0 <= thresholds[i]
                case 1:  // Zero: zero and NaN follow the default direction
                    node.defaultLeft = storedDefaultLeft
                    node.zeroIsMissing = true
                case 2:  // NaN
                    node.defaultLeft = storedDefaultLeft
                default:
                    throw .parse("node \(i): decision_type \(decision) has an unknown missing type")
                }
            }
            nodes.append(node)
        }
        for j in 0..<leafCount {
            nodes.append(.leaf(cover: leafCounts[j]))
            values[internalCount + j] = leafValues[j]
        }
        return DecisionTree(nodes: nodes, values: values, categorySets: categorySets)
    }

    // MARK: - Field access

    private static func field(_ section: Section, _ key: String) throws(MedInferError) -> (line: Int, value: Substring) {
        guard let entry = section[key] else { throw .parse("missing field '\(key)'") }
        return entry
    }

    private static func integer(_ section: Section, _ key: String, in range: ClosedRange<Int>,
                                default fallback: Int? = nil) throws(MedInferError) -> Int {
        guard let entry = section[key] else {
            if let fallback { return fallback }
            throw .parse("missing field '\(key)'")
        }
        guard let value = Int(entry.value.trimmingSpaces()), range.contains(value) else {
            throw .parse("line \(entry.line): '\(key)' must be an integer in \(range.lowerBound)...\(range.upperBound), got '\(entry.value.prefix(40))'")
        }
        return value
    }

    private static func numbers(_ section: Section, _ key: String, count: Int) throws(MedInferError) -> [Double] {
        let entry = try field(section, key)
        var out: [Double] = []
        // Reserve by what the line can hold, not by the declared count: a tiny file
        // must not be able to ask for gigabytes.
        out.reserveCapacity(min(count, entry.value.utf8.count / 2 + 1))
        for part in entry.value.split(separator: " ") {
            guard out.count < count else {
                throw .parse("line \(entry.line): '\(key)' has more than \(count) values")
            }
            guard let value = parseDouble(part) else {
                throw .parse("line \(entry.line): '\(key)' value \(out.count) '\(part.prefix(40))' is not a number")
            }
            out.append(value)
        }
        guard out.count == count else {
            throw .parse("line \(entry.line): '\(key)' has \(out.count) values, expected \(count)")
        }
        return out
    }

    private static func integers(_ section: Section, _ key: String, count: Int,
                                 in range: ClosedRange<Int>) throws(MedInferError) -> [Int] {
        let entry = try field(section, key)
        var out: [Int] = []
        out.reserveCapacity(min(count, entry.value.utf8.count / 2 + 1))
        for part in entry.value.split(separator: " ") {
            guard out.count < count else {
                throw .parse("line \(entry.line): '\(key)' has more than \(count) values")
            }
            guard let value = Int(part), range.contains(value) else {
                throw .parse("line \(entry.line): '\(key)' value \(out.count) '\(part.prefix(40))' is not an integer in \(range.lowerBound)...\(range.upperBound)")
            }
            out.append(value)
        }
        guard out.count == count else {
            throw .parse("line \(entry.line): '\(key)' has \(out.count) values, expected \(count)")
        }
        return out
    }
}
