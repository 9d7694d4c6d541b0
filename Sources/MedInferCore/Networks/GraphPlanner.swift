/// Turns a graph plus concrete input shapes into an `ExecutionPlan`: infers every shape,
/// folds what is computable now (the Shape/Gather/Concat/Reshape chains exporters emit
/// become constants), fuses activations into the producing Conv/Gemm/MatMul, and emits
/// runtime steps for the rest. A subgraph (a Loop body, an If branch) is planned by a
/// child planner that shares the builder and sees the enclosing graph's values.
final class GraphPlanner {
    /// How recurrences get their lengths and state (see `RecurrentOps`).
    enum SequenceMode: Hashable, Sendable {
        /// As the file says.
        case plain
        /// Per-sequence lengths from an extra plan input (after the model's inputs).
        case lengths
        /// Initial and final recurrent state in buffers the caller binds as extra inputs.
        case streaming
    }

    /// What all planners of one plan share.
    final class Shared {
        let model: NetworkModel
        let builder: PlanBuilder
        let mode: SequenceMode
        /// The engine-given lengths ([batch] floats) in `.lengths` mode.
        var lengthsInput: RuntimeTensor?
        /// Floats of each stream state buffer, in extra-input order, in `.streaming` mode.
        var stateSizes: [Int] = []
        /// Subgraph nodes planned so far (unrolled loops), against `maxSubgraphNodes`.
        var subgraphNodes = 0

        init(model: NetworkModel, mode: SequenceMode) {
            self.model = model; self.mode = mode
            builder = PlanBuilder(modelBytes: model.bytes.count, constantStorage: [model.bytes],
                                  memory: model.weightCache.memoryForFirstPlan())
        }
    }

    /// Nodes that unrolling loops may plan in one plan.
    static let maxSubgraphNodes = 1 << 18

    let shared: Shared
    let graph: ONNXGraph
    let order: [Int]
    var values: [String: PlanValue] = [:]
    private var consumers: [String: [Int]] = [:]
    private var graphOutputs: Set<String> = []
    /// Nodes folded into an earlier node: their output is that node's output.
    private var fused: [Int: String] = [:]
    /// Convolutions whose input was multiplied by a constant scalar that was folded into
    /// their weights instead (node index -> scale).
    var inputScale: [Int: Float] = [:]
    /// Distinguishes the graphs of a model (main graph, subgraph bodies) in cache keys.
    let scopeKey: String

    var model: NetworkModel { shared.model }
    var builder: PlanBuilder { shared.builder }
    var sequenceMode: SequenceMode { shared.mode }
    var lengthsInput: RuntimeTensor? { shared.lengthsInput }

    init(model: NetworkModel, mode: SequenceMode = .plain, retainingAll: Bool = false) {
        shared = Shared(model: model, mode: mode)
        shared.builder.retainAll = retainingAll
        graph = model.graph
        order = model.order
        scopeKey = "main"
        indexConsumers()
    }

    /// A planner for `graph`, a subgraph of a node of `parent`, seeing the parent's values.
    /// `order`: the subgraph's node order from an earlier planner of it (a Loop's next
    /// iteration), so it is not sorted again.
    init(subgraph: ONNXGraph, of parent: GraphPlanner, scopeKey: String, order: [Int]? = nil) throws(MedInferError) {
        shared = parent.shared
        graph = subgraph
        self.scopeKey = scopeKey
        values = parent.values
        if let order {
            self.order = order
        } else {
            var known = Set(parent.values.keys)
            for input in subgraph.inputs { known.insert(input.name) }
            for t in subgraph.initializers { known.insert(t.name) }
            self.order = try GraphOrder.topological(subgraph, known: known)
        }
        indexConsumers()
    }

    private func indexConsumers() {
        for (i, node) in graph.nodes.enumerated() {
            for input in node.inputs where !input.isEmpty { consumers[input, default: []].append(i) }
            // A node whose subgraph reads a value consumes it too (it must not be fused away).
            for name in GraphOrder.outerNames(of: node) { consumers[name, default: []].append(i) }
        }
        graphOutputs = Set(graph.outputs.map(\.name))
    }

    func plan(inputShapes: [[Int]]) throws(MedInferError) -> ExecutionPlan {
        guard inputShapes.count == model.inputs.count else {
            throw .invalidArgument("the model has \(model.inputs.count) inputs, \(inputShapes.count) were given")
        }
        for (name, tensor) in model.initializers { values[name] = .constant(tensor) }
        for (i, port) in model.inputs.enumerated() {
            let shape = inputShapes[i]
            if let dims = port.dims {
                guard dims.count == shape.count else {
                    throw .shapeMismatch("input '\(port.name)' must have rank \(dims.count) (\(Self.describe(dims))), got shape \(shape)")
                }
                for (axis, dim) in dims.enumerated() {
                    if case .fixed(let d) = dim, d != shape[axis] {
                        throw .shapeMismatch("input '\(port.name)' must have shape \(Self.describe(dims)), got \(shape) (axis \(axis))")
                    }
                }
            }
            _ = try PlanBuilder.elementCount(shape, "input '\(port.name)'")
            values[port.name] = .tensor(RuntimeTensor(slot: builder.inputSlot(i), shape: shape))
        }
        if sequenceMode == .lengths {
            guard let sequence = model.sequenceInput, let batch = inputShapes[sequence].first else {
                throw .unsupported("the model has no [batch, time, features] sequence input")
            }
            shared.lengthsInput = RuntimeTensor(slot: builder.inputSlot(model.inputs.count), shape: [batch])
        }
        try planNodes()
        var planned: [PlannedOutput] = []
        for port in model.outputs {
            guard let v = values[port.name] else { throw .parse("graph output '\(port.name)' was not computed") }
            switch v {
            case .constant(let c): planned.append(.constant(c))
            case .tensor(let t): planned.append(.slot(t.slot, shape: t.shape))
            }
        }
        let plan = builder.finish(inputShapes: inputShapes, outputs: planned)
        plan.stateSizes = shared.stateSizes
        return plan
    }

    /// Plans a subgraph given its inputs' values; returns its outputs' values.
    func planSubgraph(inputs: [PlanValue]) throws(MedInferError) -> [PlanValue] {
        guard inputs.count == graph.inputs.count else {
            throw .parse("subgraph '\(graph.name)' declares \(graph.inputs.count) inputs, \(inputs.count) given")
        }
        shared.subgraphNodes += graph.nodes.count
        guard shared.subgraphNodes <= Self.maxSubgraphNodes else {
            throw .outOfMemory("unrolling loops would plan more than \(Self.maxSubgraphNodes) nodes")
        }
        for (i, t) in graph.initializers.enumerated() {
            values[t.name] = .constant(try ConstTensor(t, bytes: model.bytes.buffer, label: "initializer #\(i) of subgraph '\(graph.name)'"))
        }
        for (port, value) in zip(graph.inputs, inputs) { values[port.name] = value }
        try planNodes()
        var outputs: [PlanValue] = []
        for port in graph.outputs {
            guard let v = values[port.name] else { throw .parse("subgraph output '\(port.name)' was not computed") }
            outputs.append(v)
        }
        return outputs
    }

    private func planNodes() throws(MedInferError) {
        for index in order {
            let node = graph.nodes[index]
            if let source = fused[index] {
                values[node.outputs[0]] = values[source]
                continue
            }
            var inputs: [PlanValue?] = []
            for name in node.inputs {
                if name.isEmpty { inputs.append(nil); continue }
                guard let v = values[name] else {
                    throw .parse("\(node.label): input '\(name)' has no value (produced by an unused output?)")
                }
                inputs.append(v)
            }
            let context = NodeContext(node: node, index: index, inputs: inputs, planner: self)
            let outputs: [PlanValue]
            do throws(MedInferError) { outputs = try Operators.plan(context) } catch { throw error.prefixed(node.label) }
            for (name, value) in zip(node.outputs, outputs) where !name.isEmpty { values[name] = value }
        }
    }

    /// A stream-owned state buffer of `floats` floats, bound as the next extra input.
    func streamState(floats: Int) -> RuntimeTensor {
        shared.stateSizes.append(floats)
        let index = model.inputs.count + shared.stateSizes.count - 1
        return RuntimeTensor(slot: builder.inputSlot(index), shape: [floats])
    }

    func hasConsumers(_ value: String) -> Bool { graphOutputs.contains(value) || !(consumers[value]?.isEmpty ?? true) }

    static func describe(_ dims: [ONNXDimension]) -> String {
        "[" + dims.map { d -> String in
            switch d {
            case .fixed(let v): return "\(v)"
            case .symbolic(let s): return s
            case .unknown: return "?"
            }
        }.joined(separator: ", ") + "]"
    }

    /// The node that alone consumes `value`, when `value` is not also a graph output.
    func soleConsumer(of value: String) -> (index: Int, node: ONNXNode)? {
        guard !graphOutputs.contains(value), let users = consumers[value], users.count == 1,
              fused[users[0]] == nil else { return nil }
        let node = graph.nodes[users[0]]
        return (users[0], node)
    }

    func markFused(_ index: Int, outputOf source: String) { fused[index] = source }

    /// The node of this graph that outputs `value`, if any.
    func producer(of value: String) -> (index: Int, node: ONNXNode)? {
        graph.nodes.indices.first { graph.nodes[$0].outputs.contains(value) }.map { ($0, graph.nodes[$0]) }
    }

    /// Whether every node that uses `value`, other than node `index`, reads only its shape
    /// (Shape nodes), and the graph does not output it.
    func onlyShapesRead(_ value: String, besides index: Int) -> Bool {
        guard !graphOutputs.contains(value), let users = consumers[value] else { return false }
        return users.allSatisfy { $0 == index || graph.nodes[$0].opType == "Shape" }
    }
}

/// What an operator planner sees: the node, its input values, and the builder.
struct NodeContext {
    let node: ONNXNode
    let index: Int
    let inputs: [PlanValue?]
    let planner: GraphPlanner

    var builder: PlanBuilder { planner.builder }
    var opset: Int64 { planner.model.opsetVersion }

    func input(_ i: Int) throws(MedInferError) -> PlanValue {
        guard i < inputs.count, let v = inputs[i] else { throw .parse("input \(i) is missing") }
        return v
    }

    func optionalInput(_ i: Int) -> PlanValue? { i < inputs.count ? inputs[i] : nil }

    /// An input that must be known at plan time (shapes, axes, pads...).
    func constantInput(_ i: Int, _ what: String) throws(MedInferError) -> ConstTensor? {
        guard let v = optionalInput(i) else { return nil }
        guard let c = v.constant else {
            throw .unsupported("input \(i) (\(what)) is computed at run time; only values known when the input shapes are known are supported")
        }
        return c
    }

    var allInputsConstant: Bool { inputs.allSatisfy { $0 == nil || $0!.constant != nil } }

    func newTensor(_ shape: [Int]) throws(MedInferError) -> RuntimeTensor {
        try builder.newTensor(shape, for: node.label)
    }

    func emit(_ step: NetworkStep, reading: [RuntimeTensor], writing: [RuntimeTensor]) throws(MedInferError) -> [PlanValue] {
        try builder.emit(step, reading: reading, writing: writing, allConstant: allInputsConstant)
    }

    // Attributes.
    func attribute(_ name: String) -> ONNXAttributeValue? { node.attributes.first { $0.name == name }?.value }

    func int(_ name: String, _ fallback: Int) throws(MedInferError) -> Int {
        guard let v = attribute(name) else { return fallback }
        guard case .int(let i) = v, let n = Int(exactly: i), abs(n) < (1 << 40) else {
            throw .parse("attribute '\(name)' must be a small integer")
        }
        return n
    }

    func float(_ name: String, _ fallback: Float) throws(MedInferError) -> Float {
        guard let v = attribute(name) else { return fallback }
        switch v {
        case .float(let f): return f
        case .int(let i): return Float(i)
        default: throw .parse("attribute '\(name)' must be a float")
        }
    }

    func ints(_ name: String) throws(MedInferError) -> [Int]? {
        guard let v = attribute(name) else { return nil }
        guard case .ints(let list) = v else {
            if case .int(let i) = v, abs(i) < (1 << 40) { return [Int(i)] }
            throw .parse("attribute '\(name)' must be a list of integers")
        }
        var out: [Int] = []
        for i in list {
            guard abs(i) < (1 << 40) else { throw .parse("attribute '\(name)' value \(i) is out of range") }
            out.append(Int(i))
        }
        return out
    }

    func string(_ name: String, _ fallback: String) throws(MedInferError) -> String {
        guard let v = attribute(name) else { return fallback }
        guard case .string(let s) = v else { throw .parse("attribute '\(name)' must be a string") }
        return s
    }

    /// Normalizes an axis against a rank (negative axes count from the end).
    func axis(_ value: Int, rank: Int, _ what: String = "axis") throws(MedInferError) -> Int {
        let a = value < 0 ? value + rank : value
        // A scalar has no axis at all: every caller indexes the shape with the result.
        guard a >= 0, a < rank else { throw .parse("\(what) \(value) is out of range for rank \(rank)") }
        return a
    }

    /// If the sole consumer of this node's first output is an activation, folds it in:
    /// returns the activation and marks that node as done.
    func fuseActivation(after output: String) throws(MedInferError) -> (Activation, String)? {
        guard let (index, next) = planner.soleConsumer(of: output), next.inputs.first == output else { return nil }
        var activation: Activation?
        switch next.opType {
        case "Relu": activation = .relu
        case "LeakyRelu":
            let alpha = next.attributes.first { $0.name == "alpha" }
            if case .float(let a)? = alpha?.value { activation = .leakyRelu(alpha: a) } else { activation = .leakyRelu(alpha: 0.01) }
        case "Clip":
            if let bounds = try? Operators.clipBounds(next, inputs: next.inputs.dropFirst().map { $0.isEmpty ? nil : planner.values[$0] }) {
                activation = .clip(min: bounds.0, max: bounds.1)
            }
        case "Sigmoid": activation = .sigmoid
        case "Tanh": activation = .tanh
        default: break
        }
        guard let activation, let out = next.outputs.first else { return nil }
        planner.markFused(index, outputOf: output)
        return (activation, out)
    }
}
