#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// MedInfer's own binary tree file (".mdi"): a loaded model's IR written out so that a
/// cold process loads it without JSON or text parsing (what serverless hosts need).
/// Little-endian, versioned; every count is checked against the bytes that remain
/// before anything is allocated, and the result goes through the same
/// `TreeEnsemble.validate()` as every other format.
public enum TreeSnapshot {
    static let magic: [UInt8] = Array("MDITREE\0".utf8)
    static let version: UInt32 = 1

    // MARK: - Writing

    public static func encode(_ ensemble: TreeEnsemble) -> [UInt8] {
        var out = ByteWriter()
        out.bytes += magic
        out.u32(version)
        out.u32(UInt32(ensemble.format.rawValue))
        out.u32(ensemble.accumulatesInFloat32 ? 1 : 0)
        switch ensemble.averaging {
        case .none: out.u32(0)
        case .beforeTransform: out.u32(1)
        case .always: out.u32(2)
        }
        for value in [ensemble.featureCount, ensemble.classCount, ensemble.outputCount,
                      ensemble.treesPerIteration, ensemble.defaultIterationLimit] { out.u64(UInt64(value)) }
        out.string(ensemble.objective)
        out.u32(ensemble.featureNames == nil ? 0 : 1)
        ensemble.featureNames?.forEach { out.string($0) }
        switch ensemble.transform {
        case .identity: out.u32(0); out.f64(0)
        case .sigmoid(let scale): out.u32(1); out.f64(scale)
        case .sigmoidTwoColumns: out.u32(2); out.f64(0)
        case .softmax: out.u32(3); out.f64(0)
        case .argmax: out.u32(4); out.f64(0)
        case .exp: out.u32(5); out.f64(0)
        case .signedSquare: out.u32(6); out.f64(0)
        }
        switch ensemble.preprocessing {
        case nil: out.u32(0)
        case .minMax(let scale, let offset)?: out.u32(1); scale.forEach { out.f64($0) }; offset.forEach { out.f64($0) }
        case .standard(let mean, let scale)?: out.u32(2); mean.forEach { out.f64($0) }; scale.forEach { out.f64($0) }
        case .zeroTinyValues?: out.u32(3)
        }
        ensemble.baseMargin.forEach { out.f64($0) }
        out.u64(UInt64(ensemble.trees.count))
        for tree in ensemble.trees {
            out.u64(UInt64(tree.nodes.count))
            out.u32(UInt32(tree.leafWidth))
            out.u32(UInt32(tree.outputIndex))
            out.u32(UInt32(tree.categorySets.count))
            for node in tree.nodes {
                out.u32(UInt32(bitPattern: node.leftChild))
                out.u32(UInt32(bitPattern: node.rightChild))
                out.u32(UInt32(bitPattern: node.feature))
                out.u32(node.threshold.bitPattern)
                out.u32((node.defaultLeft ? 1 : 0) | (node.zeroIsMissing ? 2 : 0))
                out.u32(UInt32(bitPattern: node.categorySet))
                out.f64(node.cover)
            }
            tree.values.forEach { out.f64($0) }
            for set in tree.categorySets {
                out.u32(UInt32(set.rule.rawValue))
                switch set.storage {
                case .bitset(let words): out.u32(0); out.u64(UInt64(words.count)); words.forEach { out.u32($0) }
                case .sorted(let ids): out.u32(1); out.u64(UInt64(ids.count)); ids.forEach { out.u32(UInt32(bitPattern: $0)) }
                }
            }
        }
        return out.bytes
    }

    /// Writes `ensemble` to `path` (replacing it).
    public static func write(_ ensemble: TreeEnsemble, to path: String) throws(MedInferError) {
        let bytes = encode(ensemble)
        guard let file = fopen(path, "wb") else {
            throw .io("cannot create '\(path)': \(String(cString: strerror(errno)))")
        }
        let written = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
        let closed = fclose(file)
        guard written == bytes.count, closed == 0 else {
            throw .io("cannot write '\(path)': \(String(cString: strerror(errno)))")
        }
    }

    static func isSnapshot(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count >= magic.count && zip(bytes.prefix(magic.count), magic).allSatisfy { $0 == $1 }
    }

    // MARK: - Reading

    static func read(_ bytes: UnsafeRawBufferPointer) throws(MedInferError) -> TreeEnsemble {
        var input = ByteReader(bytes: bytes, offset: magic.count)
        let version = try input.u32("version")
        guard version == Self.version else {
            throw .unsupported("MedInfer tree file version \(version); this library reads version \(Self.version)")
        }
        guard let format = ModelFormat(rawValue: Int32(bitPattern: try input.u32("format"))) else {
            throw .parse("unknown source format")
        }
        let float32 = try input.u32("flags") & 1 == 1
        let averaging: Averaging
        switch try input.u32("averaging") {
        case 0: averaging = .none
        case 1: averaging = .beforeTransform
        case 2: averaging = .always
        case let other: throw .parse("unknown averaging \(other)")
        }
        let featureCount = try input.count("feature count", limit: Limits.maxFeatures)
        let classCount = try input.count("class count", limit: Limits.maxOutputs)
        let outputCount = try input.count("output count", limit: Limits.maxOutputs)
        let perIteration = try input.count("trees per iteration", limit: Limits.maxTrees)
        let defaultLimit = try input.count("default iteration limit", limit: Limits.maxTrees)
        let objective = try input.string("objective")
        var names: [String]? = nil
        if try input.u32("feature name flag") == 1 {
            try input.require(featureCount * 4, "feature names")
            names = []
            for _ in 0..<featureCount { names!.append(try input.string("feature name")) }
        }
        let transform: OutputTransform
        let transformKind = try input.u32("transform")
        let scale = try input.f64("transform scale")
        switch transformKind {
        case 0: transform = .identity
        case 1:
            guard scale.isFinite, scale > 0 else { throw .parse("sigmoid scale \(scale)") }
            transform = .sigmoid(scale: scale)
        case 2: transform = .sigmoidTwoColumns
        case 3: transform = .softmax
        case 4: transform = .argmax
        case 5: transform = .exp
        case 6: transform = .signedSquare
        default: throw .parse("unknown output transform \(transformKind)")
        }
        var preprocessing: FeaturePreprocessing? = nil
        switch try input.u32("preprocessing") {
        case 0: break
        case 1: preprocessing = .minMax(scale: try input.f64s(featureCount, "scale"), min: try input.f64s(featureCount, "min"))
        case 2: preprocessing = .standard(mean: try input.f64s(featureCount, "mean"), scale: try input.f64s(featureCount, "scale"))
        case 3: preprocessing = .zeroTinyValues
        case let other: throw .parse("unknown preprocessing \(other)")
        }
        let base = try input.f64s(outputCount, "base margin")
        let treeCount = try input.count("tree count", limit: Limits.maxTrees)
        try input.require(treeCount * 20, "trees")
        var trees: [DecisionTree] = []
        trees.reserveCapacity(treeCount)
        for t in 0..<treeCount {
            let nodeCount = try input.count("tree \(t) node count", limit: Limits.maxTotalNodes)
            let width = Int(try input.u32("leaf width"))
            let outputIndex = Int(try input.u32("output index"))
            let setCount = Int(try input.u32("category set count"))
            guard width >= 1, width <= Limits.maxOutputs else { throw .parse("tree \(t): leaf width \(width)") }
            try input.require(nodeCount * 32 + nodeCount * width * 8 + setCount * 16, "tree \(t)")
            var nodes: [TreeNode] = []
            nodes.reserveCapacity(nodeCount)
            for _ in 0..<nodeCount {
                let left = Int32(bitPattern: try input.u32("left")), right = Int32(bitPattern: try input.u32("right"))
                let feature = Int32(bitPattern: try input.u32("feature"))
                let threshold = Float(bitPattern: try input.u32("threshold"))
                let flags = try input.u32("node flags")
                let set = Int32(bitPattern: try input.u32("category set"))
                let cover = try input.f64("cover")
                nodes.append(TreeNode(leftChild: left, rightChild: right, feature: feature, threshold: threshold,
                                      defaultLeft: flags & 1 != 0, zeroIsMissing: flags & 2 != 0,
                                      categorySet: set, cover: cover))
            }
            let values = try input.f64s(nodeCount * width, "leaf values")
            var sets: [CategorySet] = []
            for _ in 0..<setCount {
                guard let rule = CategoricalRule(rawValue: UInt8(truncatingIfNeeded: try input.u32("rule"))) else {
                    throw .parse("tree \(t): unknown categorical rule")
                }
                let storage = try input.u32("set storage")
                let count = try input.count("set size", limit: Int(UInt32.max))
                try input.require(count * 4, "category set")
                var words: [UInt32] = []
                words.reserveCapacity(count)
                for _ in 0..<count { words.append(try input.u32("category word")) }
                switch storage {
                case 0: sets.append(CategorySet(words: words, rule: rule))
                case 1: sets.append(CategorySet(categories: words.map { Int(Int32(bitPattern: $0)) }.filter { $0 >= 0 }, rule: rule))
                default: throw .parse("tree \(t): unknown category set storage \(storage)")
                }
            }
            trees.append(DecisionTree(nodes: nodes, values: values, leafWidth: width, outputIndex: outputIndex,
                                      categorySets: sets))
        }
        guard input.offset == bytes.count else {
            throw .parse("\(bytes.count - input.offset) unexpected bytes after the last tree")
        }
        return TreeEnsemble(format: format, objective: objective, featureCount: featureCount, featureNames: names,
                            classCount: classCount, outputCount: outputCount, trees: trees,
                            treesPerIteration: perIteration, defaultIterationLimit: defaultLimit, baseMargin: base,
                            averaging: averaging, accumulatesInFloat32: float32, transform: transform,
                            preprocessing: preprocessing)
    }
}

/// Little-endian appends.
private struct ByteWriter {
    var bytes: [UInt8] = []
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func f64(_ v: Double) { u64(v.bitPattern) }
    mutating func string(_ s: String) { u32(UInt32(s.utf8.count)); bytes += s.utf8 }
}

/// Bounds-checked little-endian reads; every failure names the field.
private struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    var offset: Int

    mutating func require(_ count: Int, _ field: String) throws(MedInferError) {
        guard count >= 0, count <= bytes.count - offset else {
            throw .parse("truncated MedInfer tree file: \(field) needs \(count) bytes at offset \(offset), \(bytes.count - offset) remain")
        }
    }
    mutating func u32(_ field: String) throws(MedInferError) -> UInt32 {
        try require(4, field)
        defer { offset += 4 }
        return UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }
    mutating func u64(_ field: String) throws(MedInferError) -> UInt64 {
        try require(8, field)
        defer { offset += 8 }
        return UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }
    mutating func f64(_ field: String) throws(MedInferError) -> Double { Double(bitPattern: try u64(field)) }
    mutating func count(_ field: String, limit: Int) throws(MedInferError) -> Int {
        let value = try u64(field)
        guard value <= UInt64(limit) else { throw .parse("\(field) \(value) is above the limit of \(limit)") }
        return Int(value)
    }
    mutating func f64s(_ n: Int, _ field: String) throws(MedInferError) -> [Double] {
        try require(n * 8, field)
        var out: [Double] = []
        out.reserveCapacity(n)
        for _ in 0..<n { out.append(try f64(field)) }
        return out
    }
    mutating func string(_ field: String) throws(MedInferError) -> String {
        let length = Int(try u32(field))
        try require(length, field)
        defer { offset += length }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + length]), as: UTF8.self)
    }
}
