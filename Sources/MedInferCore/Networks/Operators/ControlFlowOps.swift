/// Loop and If. Both are planned, not interpreted: an If whose condition is known when the
/// input shapes are (exporters' shape checks) becomes the chosen branch, and a Loop whose
/// trip count and condition are known then (a scan over the time steps) is unrolled into
/// the plan, one copy of its body per iteration. A Loop whose body is a GRU cell (Keras
/// GRU through tf2onnx) is replaced by the fused GRU kernel first (`GRULoopPattern`).
/// Conditions computed from input values are refused by name.

/// Stacks equally shaped tensors along a new leading axis (a Loop's scan outputs).
final class StackStep: NetworkStep {
    let parts: [Int], out: Int, count: Int

    init(parts: [Int], out: Int, count: Int) { self.parts = parts; self.out = out; self.count = count }

    func run(_ slots: UnsafeMutablePointer<UnsafeMutablePointer<Float>>) {
        for (i, part) in parts.enumerated() { (slots[out] + i * count).update(from: slots[part], count: count) }
    }
}

extension Operators {
    /// Iterations one Loop may unroll to.
    static let maxLoopIterations = 1 << 16

    static func loop(_ c: NodeContext) throws(MedInferError) -> [PlanValue] {
        guard case .graph(let body)? = c.attribute("body") else { throw .parse("Loop needs a 'body' graph attribute") }
        var tripCount: Int64?
        if c.optionalInput(0) != nil {
            guard let m = try c.constantInput(0, "trip count M")?.intValues.first else { throw .parse("Loop trip count M is empty") }
            tripCount = m
        }
        var condition = true
        if c.optionalInput(1) != nil {
            guard let v = try c.constantInput(1, "condition")?.intValues.first else { throw .parse("Loop condition is empty") }
            condition = v != 0
        }
        let carriedCount = max(c.inputs.count - 2, 0)
        guard body.inputs.count == 2 + carriedCount else {
            throw .parse("Loop body takes \(body.inputs.count) inputs; the node passes \(carriedCount) loop-carried values (+ iteration, condition)")
        }
        let scanCount = body.outputs.count - 1 - carriedCount
        guard scanCount >= 0, c.node.outputs.count <= carriedCount + scanCount else {
            throw .parse("Loop body returns \(body.outputs.count) values for \(carriedCount) loop-carried values")
        }
        var carried: [PlanValue] = []
        for i in 0 ..< carriedCount {
            guard let v = c.optionalInput(2 + i) else { throw .parse("Loop-carried input \(i) is missing") }
            carried.append(v)
        }
        if let fused = try GRULoopPattern.plan(c, body: body, tripCount: tripCount, carried: carried, scanCount: scanCount) {
            return fused
        }
        var scans = [[PlanValue]](repeating: [], count: scanCount)
        var iteration: Int64 = 0
        var bodyOrder: [Int]?
        while condition && (tripCount.map { iteration < $0 } ?? true) {
            guard iteration < Int64(maxLoopIterations) else {
                throw .unsupported("Loop runs more than \(maxLoopIterations) iterations")
            }
            let planner = try GraphPlanner(subgraph: body, of: c.planner, scopeKey: c.planner.scopeKey + "/\(c.index)",
                                           order: bodyOrder)
            bodyOrder = planner.order
            let inputs: [PlanValue] = [.constant(.scalar(iteration)), .constant(ConstTensor(shape: [], ints: [1], type: .bool))] + carried
            let outputs: [PlanValue]
            do throws(MedInferError) { outputs = try planner.planSubgraph(inputs: inputs) } catch {
                throw error.prefixed("iteration \(iteration)")
            }
            guard let next = outputs[0].constant?.intValues.first else {
                throw .unsupported("the Loop condition is computed from input values (a data-dependent loop)")
            }
            condition = next != 0
            carried = Array(outputs[1 ..< 1 + carriedCount])
            for k in 0 ..< scanCount { scans[k].append(outputs[1 + carriedCount + k]) }
            iteration += 1
        }
        var results = carried
        for parts in scans { results.append(try stack(c, parts)) }
        return Array(results.prefix(c.node.outputs.count))
    }

    /// Stacks a Loop's per-iteration scan values along a new first axis.
    static func stack(_ c: NodeContext, _ parts: [PlanValue]) throws(MedInferError) -> PlanValue {
        guard let first = parts.first else { return .constant(ConstTensor(shape: [0], floats: [])) }
        let shape = first.shape
        guard parts.allSatisfy({ $0.shape == shape }) else {
            throw .shapeMismatch("Loop scan output changes shape across iterations (\(shape) then \(parts.first { $0.shape != shape }!.shape))")
        }
        let count = shape.reduce(1, *)
        if parts.allSatisfy({ $0.constant != nil }) {
            if parts.allSatisfy({ !$0.constant!.isFloat }) {
                return .constant(ConstTensor(shape: [parts.count] + shape, ints: parts.flatMap { $0.constant!.intValues },
                                             type: parts[0].constant!.elementType))
            }
            return .constant(ConstTensor(shape: [parts.count] + shape, floats: parts.flatMap { $0.constant!.floatValues }))
        }
        var tensors: [RuntimeTensor] = []
        for part in parts { tensors.append(try c.builder.tensor(part)) }
        let out = try c.newTensor([parts.count] + shape)
        return try c.builder.emit(StackStep(parts: tensors.map(\.slot), out: out.slot, count: count),
                                  reading: tensors, writing: [out], allConstant: false)[0]
    }

    static func ifOp(_ c: NodeContext) throws(MedInferError) -> [PlanValue] {
        guard let condition = try c.constantInput(0, "condition")?.intValues.first else {
            throw .parse("If needs a condition")
        }
        let name = condition != 0 ? "then_branch" : "else_branch"
        guard case .graph(let branch)? = c.attribute(name) else { throw .parse("If needs a '\(name)' graph attribute") }
        let planner = try GraphPlanner(subgraph: branch, of: c.planner, scopeKey: c.planner.scopeKey + "/\(c.index)\(name)")
        let outputs = try planner.planSubgraph(inputs: [])
        guard outputs.count >= c.node.outputs.count else {
            throw .parse("If \(name) returns \(outputs.count) values, the node has \(c.node.outputs.count) outputs")
        }
        return outputs
    }
}
