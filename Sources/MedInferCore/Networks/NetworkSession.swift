#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The mutable state for running one `NetworkModel` on one thread at a time: plans
/// cached by input shapes, and the arena their tensors live in. Sessions are cheap;
/// make one per thread (a model can serve any number of them).
public final class NetworkSession: @unchecked Sendable {
    public let model: NetworkModel
    private struct PlanKey: Hashable {
        var shapes: [[Int]]
        var mode: GraphPlanner.SequenceMode
    }
    private var plans: [PlanKey: ExecutionPlan] = [:]
    private var planOrder: [PlanKey] = []
    private var arena: UnsafeMutablePointer<Float>?
    private var arenaCapacity = 0
    private var table: UnsafeMutablePointer<UnsafeMutablePointer<Float>>?
    private var tableCapacity = 0

    /// Plans kept per session; the least recently added is dropped beyond this.
    public static let maxCachedPlans = 8

    public init(model: NetworkModel) { self.model = model }

    deinit {
        arena?.deallocate()
        table?.deallocate()
    }

    /// The plan for these input shapes, made on first use.
    public func plan(for shapes: [[Int]]) throws(MedInferError) -> ExecutionPlan {
        try plan(for: shapes, mode: .plain)
    }

    func plan(for shapes: [[Int]], mode: GraphPlanner.SequenceMode) throws(MedInferError) -> ExecutionPlan {
        let key = PlanKey(shapes: shapes, mode: mode)
        if let plan = plans[key] { return plan }
        let plan = try model.plan(inputShapes: shapes, mode: mode)
        if planOrder.count >= Self.maxCachedPlans {
            plans[planOrder.removeFirst()] = nil
        }
        plans[key] = plan
        planOrder.append(key)
        return plan
    }

    /// Output shapes for the given input shapes (plans the graph if needed).
    public func outputShapes(inputShapes: [[Int]]) throws(MedInferError) -> [[Int]] {
        try plan(for: inputShapes).outputs.map { output in
            switch output {
            case .slot(_, let shape): return shape
            case .constant(let c): return c.shape
            }
        }
    }

    /// Runs the network. `inputs[i]` holds the elements of input i (model order) with
    /// shape `inputShapes[i]`; `outputs[j]` receives output j, whose capacity the caller
    /// checked against `outputShapes`. Returns the output shapes.
    public func run(inputs: [UnsafePointer<Float>], inputShapes: [[Int]],
                    outputs: [UnsafeMutablePointer<Float>?]) throws(MedInferError) -> [[Int]] {
        try run(plan: plan(for: inputShapes), inputs: inputs, outputs: outputs)
    }

    /// Runs a plan of this session's model. `inputs` holds the model's inputs, then the
    /// plan's extra inputs (engine lengths, stream state buffers).
    func run(plan: ExecutionPlan, inputs: [UnsafePointer<Float>],
             outputs: [UnsafeMutablePointer<Float>?]) throws(MedInferError) -> [[Int]] {
        try reserve(arenaFloats: plan.arenaFloats, slots: plan.locations.count)
        plan.bind(table: table!, arena: arena!, inputs: inputs)
        plan.execute(table!)
        var shapes: [[Int]] = []
        for (j, output) in plan.outputs.enumerated() {
            switch output {
            case .slot(let slot, let shape):
                let count = shape.reduce(1, *)
                if j < outputs.count, let destination = outputs[j] { destination.update(from: table![slot], count: count) }
                shapes.append(shape)
            case .constant(let c):
                if j < outputs.count, let destination = outputs[j] {
                    let values = c.floatValues
                    destination.update(from: values, count: values.count)
                }
                shapes.append(c.shape)
            }
        }
        return shapes
    }

    private func reserve(arenaFloats: Int, slots: Int) throws(MedInferError) {
        if arenaFloats > arenaCapacity || arena == nil {
            arena?.deallocate()
            arena = nil
            arenaCapacity = 0
            guard let p = malloc(max(arenaFloats, 16) * 4 + 64) else {
                throw .outOfMemory("cannot allocate the \(arenaFloats * 4)-byte tensor arena")
            }
            free(p)
            arena = .allocate(capacity: max(arenaFloats, 16))
            arenaCapacity = max(arenaFloats, 16)
        }
        if slots > tableCapacity || table == nil {
            table?.deallocate()
            table = .allocate(capacity: max(slots, 1))
            tableCapacity = max(slots, 1)
        }
    }
}
