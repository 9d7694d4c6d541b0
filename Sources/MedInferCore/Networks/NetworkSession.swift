#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The mutable state for running one `NetworkModel` on one thread at a time: plans
/// cached by input shapes, and the arena their tensors live in. Sessions are cheap;
/// make one per thread (a model can serve any number of them).
public final class NetworkSession: @unchecked Sendable {
    /// Unowned so that sessions pooled by their own model (for streams) do not keep it
    /// alive; `retainedModel` holds it for every other session.
    public unowned let model: NetworkModel
    private let retainedModel: NetworkModel?
    /// The plan of a stream's single step (`SequenceStream`), kept apart from the
    /// shape-keyed cache so that a push does no lookup.
    var streamingPlan: ExecutionPlan?
    private struct PlanKey: Hashable {
        var shapes: [[Int]]
        var mode: GraphPlanner.SequenceMode
    }
    private var plans: [PlanKey: ExecutionPlan] = [:]
    private var planOrder: [PlanKey] = []
    private var arena: UnsafeMutablePointer<Float>?
    private var arenaCapacity = 0
    /// The region of the plan the arena was carved from (see `ExecutionPlan.memory`).
    private var arenaRegion: MemoryRegion?
    private var table: UnsafeMutablePointer<UnsafeMutablePointer<Float>>?
    private var tableCapacity = 0

    /// Plans kept per session; the least recently added is dropped beyond this.
    public static let maxCachedPlans = 8

    public init(model: NetworkModel) {
        self.model = model
        retainedModel = model
    }

    /// A session that lives in `model`'s pool and is only used while the model is.
    init(pooledBy model: NetworkModel) {
        self.model = model
        retainedModel = nil
    }

    deinit {
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
        try reserve(for: plan)
        plan.bind(table: table!, arena: arena!, inputs: inputs)
        plan.execute(table!)
        var shapes: [[Int]] = []
        for (j, output) in plan.outputs.enumerated() {
            if j < outputs.count, let destination = outputs[j] { copyOutput(output, to: destination) }
            switch output {
            case .slot(_, let shape): shapes.append(shape)
            case .constant(let c): shapes.append(c.shape)
            }
        }
        return shapes
    }

    /// Runs a plan and copies only its first output: the streaming path, which must not
    /// allocate.
    func run(plan: ExecutionPlan, inputs: [UnsafePointer<Float>], firstOutput: UnsafeMutablePointer<Float>) throws(MedInferError) {
        try reserve(for: plan)
        plan.bind(table: table!, arena: arena!, inputs: inputs)
        plan.execute(table!)
        copyOutput(plan.outputs[0], to: firstOutput)
    }

    private func copyOutput(_ output: PlannedOutput, to destination: UnsafeMutablePointer<Float>) {
        switch output {
        case .slot(let slot, let shape): destination.update(from: table![slot], count: shape.reduce(1, *))
        case .constant(let c):
            let values = c.floatValues
            destination.update(from: values, count: values.count)
        }
    }

    private func reserve(for plan: ExecutionPlan) throws(MedInferError) {
        if plan.arenaFloats > arenaCapacity || arena == nil {
            let floats = max(plan.arenaFloats, 16)
            guard let p = plan.memory.allocate(bytes: floats * 4) else {
                throw .outOfMemory("cannot allocate the \(plan.arenaFloats * 4)-byte tensor arena")
            }
            arena = p.bindMemory(to: Float.self, capacity: floats)
            arenaCapacity = floats
            arenaRegion = plan.memory
        }
        let slots = plan.locations.count
        if slots > tableCapacity || table == nil {
            table?.deallocate()
            table = .allocate(capacity: max(slots, 1))
            tableCapacity = max(slots, 1)
        }
    }
}
