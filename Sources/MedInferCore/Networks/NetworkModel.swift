/// A neural network read from an ONNX file: immutable after load and shared by all
/// threads. Running it needs a `NetworkSession` (per thread), which turns the graph into
/// an `ExecutionPlan` for each distinct set of input shapes it sees.
public final class NetworkModel: @unchecked Sendable {
    /// A graph input or output as the file declares it.
    public struct Port: Sendable {
        public let name: String
        /// Declared dimensions; nil when the file declares no shape.
        public let dims: [ONNXDimension]?
        public let elementType: Int32
    }

    public let inputs: [Port]
    public let outputs: [Port]
    /// Class labels from the model's metadata ("labels": comma-separated), if any.
    public let labels: [String]
    public let producer: String
    public let opsetVersion: Int64

    let bytes: ModelBytes
    let graph: ONNXGraph
    let initializers: [String: ConstTensor]
    /// Node indices in an order where every node follows its producers.
    let order: [Int]
    /// Packed and transformed weights, shared by all plans and sessions.
    let weightCache = WeightCache()
    /// Sessions lent to streams for one push at a time (`withPooledSession`).
    let sessionPool = Locked<[NetworkSession]>([])
    /// The input of declared shape [batch, time, features], when there is exactly one.
    public let sequenceInput: Int?
    /// The inputs other than the sequence input (per-sequence rows); empty when there is none.
    /// Stored, since every stream push checks them.
    public let staticInputs: [Int]

    public convenience init(path: String) throws(MedInferError) {
        let bytes = try ModelBytes(mapping: path)
        do throws(MedInferError) { try self.init(bytes: bytes) } catch { throw error.prefixed("'\(path)'") }
    }

    public convenience init(copying buffer: UnsafeRawBufferPointer) throws(MedInferError) {
        try self.init(bytes: ModelBytes(copying: buffer))
    }

    init(bytes: ModelBytes) throws(MedInferError) {
        self.bytes = bytes
        let model: ONNXModel
        do throws(MedInferError) { model = try ONNXReader.read(bytes.buffer) } catch { throw error.prefixed("ONNX") }
        graph = model.graph
        producer = model.producer
        opsetVersion = model.opsetVersion
        guard model.opsetVersion >= 7, model.opsetVersion <= 23 else {
            throw .unsupported("ONNX opset \(model.opsetVersion) is not supported (7 through 23 are)")
        }
        var initializers: [String: ConstTensor] = [:]
        for (i, t) in graph.initializers.enumerated() {
            initializers[t.name] = try ConstTensor(t, bytes: bytes.buffer, label: "ONNX initializer '\(t.name.isEmpty ? "#\(i)" : t.name)'")
        }
        self.initializers = initializers
        inputs = graph.inputs.filter { initializers[$0.name] == nil }
            .map { Port(name: $0.name, dims: $0.dims, elementType: $0.elementTypeCode) }
        outputs = graph.outputs.map { Port(name: $0.name, dims: $0.dims, elementType: $0.elementTypeCode) }
        guard !outputs.isEmpty else { throw .parse("ONNX graph declares no outputs") }
        for port in inputs where port.elementType != ONNXElementType.float.rawValue {
            throw .unsupported("ONNX input '\(port.name)' has element type \(ONNXElementType.name(port.elementType)); only float inputs are supported")
        }
        var labels: [String] = []
        if let entry = model.metadata.first(where: { $0.key == "labels" || $0.key == "classes" }) {
            labels = entry.value.split(separator: ",").map { String($0).trimmingSpaces() }
        }
        self.labels = labels
        let ports = inputs
        let rank3 = ports.indices.filter { ports[$0].dims?.count == 3 }
        sequenceInput = rank3.count == 1 ? rank3[0] : nil
        let sequence = sequenceInput
        staticInputs = sequence.map { s in ports.indices.filter { $0 != s } } ?? []
        order = try GraphOrder.topological(graph, known: Set(initializers.keys).union(inputs.map(\.name)))
        // Every operator must be known now, not at the first run.
        for node in GraphOrder.allNodes(graph) {
            guard node.domain.isEmpty || node.domain == "ai.onnx" else {
                throw .unsupported("ONNX \(node.label): operator domain '\(node.domain)' is not supported")
            }
            guard Operators.supported.contains(node.opType) else {
                throw .unsupported("ONNX \(node.label): operator '\(node.opType)' is not supported")
            }
        }
    }

    /// Plans the graph for concrete input shapes (in `inputs` order).
    /// `retainingAll`: every intermediate tensor keeps its memory (see `RegionalExecution`).
    func plan(inputShapes: [[Int]], mode: GraphPlanner.SequenceMode = .plain,
              retainingAll: Bool = false) throws(MedInferError) -> ExecutionPlan {
        try GraphPlanner(model: self, mode: mode, retainingAll: retainingAll).plan(inputShapes: inputShapes)
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return String(s)
    }
}

enum GraphOrder {
    /// Kahn's algorithm over value names; a cycle, or a node reading a value that
    /// nothing produces, is an error naming the node.
    static func topological(_ graph: ONNXGraph, known: Set<String>) throws(MedInferError) -> [Int] {
        var producer: [String: Int] = [:]
        // Index loops: enumerated() over nodes instantiates (offset, element) tuple
        // metadata at run time, 20 us of a model load.
        for i in graph.nodes.indices {
            let node = graph.nodes[i]
            for out in node.outputs where !out.isEmpty {
                guard producer[out] == nil, !known.contains(out) else {
                    throw .parse("ONNX \(node.label): value '\(out)' is produced more than once")
                }
                producer[out] = i
            }
        }
        var pending = [Int](repeating: 0, count: graph.nodes.count)
        var consumers = [[Int]](repeating: [], count: graph.nodes.count)
        for i in graph.nodes.indices {
            let node = graph.nodes[i]
            func depend(on input: String) throws(MedInferError) {
                if let p = producer[input] {
                    pending[i] += 1
                    consumers[p].append(i)
                } else if !known.contains(input) {
                    throw .parse("ONNX \(node.label): input '\(input)' is not produced by any node, input or initializer")
                }
            }
            // Each distinct input once (Mul(x, x) waits for x once); nodes have a few.
            for k in node.inputs.indices where !node.inputs[k].isEmpty && !node.inputs[..<k].contains(node.inputs[k]) {
                try depend(on: node.inputs[k])
            }
            // A node with subgraphs also depends on the values its subgraphs read.
            if node.attributes.contains(where: { if case .graph = $0.value { true } else { false } }) {
                for input in outerNames(of: node) where !node.inputs.contains(input) { try depend(on: input) }
            }
        }
        var ready = (0 ..< graph.nodes.count).filter { pending[$0] == 0 }
        var order: [Int] = []
        order.reserveCapacity(graph.nodes.count)
        var head = 0
        while head < ready.count {
            let n = ready[head]; head += 1
            order.append(n)
            for c in consumers[n] {
                pending[c] -= 1
                if pending[c] == 0 { ready.append(c) }
            }
        }
        guard order.count == graph.nodes.count else {
            let stuck = (0 ..< graph.nodes.count).first { pending[$0] > 0 }!
            throw .parse("ONNX graph has a cycle: \(graph.nodes[stuck].label) depends on its own output")
        }
        for out in graph.outputs where producer[out.name] == nil && !known.contains(out.name) {
            throw .parse("ONNX graph output '\(out.name)' is not produced by any node")
        }
        return order
    }

    /// The values a node's subgraphs read from enclosing graphs (their free names).
    static func outerNames(of node: ONNXNode) -> Set<String> {
        var names = Set<String>()
        for attribute in node.attributes {
            if case .graph(let g) = attribute.value { names.formUnion(freeNames(g)) }
        }
        return names
    }

    private static func freeNames(_ graph: ONNXGraph) -> Set<String> {
        var defined = Set(graph.inputs.map(\.name))
        for t in graph.initializers { defined.insert(t.name) }
        for node in graph.nodes { for out in node.outputs { defined.insert(out) } }
        var used = Set(graph.outputs.map(\.name))
        for node in graph.nodes {
            for input in node.inputs where !input.isEmpty { used.insert(input) }
            used.formUnion(outerNames(of: node))
        }
        return used.subtracting(defined)
    }

    /// Every node of a graph and of its subgraphs, depth first.
    static func allNodes(_ graph: ONNXGraph) -> [ONNXNode] {
        var nodes: [ONNXNode] = []
        for node in graph.nodes {
            nodes.append(node)
            for attribute in node.attributes {
                if case .graph(let g) = attribute.value { nodes += allNodes(g) }
            }
        }
        return nodes
    }
}
