/// One runtime operation of a plan. Steps address tensors by slot number through a
/// table of pointers that the session fills once per plan (arena offsets, constants,
/// the caller's input buffers), so a step holds no pointers of its own into the arena.
protocol NetworkStep: AnyObject {
    func run(_ slots: UnsafeMutablePointer<UnsafeMutablePointer<Float>>)
}

/// Where a slot's memory is.
enum SlotLocation {
    case arena(offset: Int)
    /// Plan-owned storage (a constant used by a runtime op, e.g. an Add's operand).
    case constant(UnsafeMutablePointer<Float>)
    /// Graph input `index`, read in place from the caller's buffer.
    case input(Int)
}

/// The tensors one step reads and writes.
struct StepIO {
    var reads: [RuntimeTensor]
    var writes: [RuntimeTensor]
}

/// What one graph output is after planning.
enum PlannedOutput {
    case slot(Int, shape: [Int])
    case constant(ConstTensor)
}

/// The executable form of a graph for one set of input shapes: steps in order, where
/// every slot lives, and the arena size that the reuse of dead buffers leaves.
public final class ExecutionPlan: @unchecked Sendable {
    let inputShapes: [[Int]]
    let steps: [NetworkStep]
    let locations: [SlotLocation]
    public let arenaFloats: Int
    let outputs: [PlannedOutput]
    /// Sizes of the recurrent state buffers a stream binds after the inputs (streaming plans).
    var stateSizes: [Int] = []
    /// Per step, what it reads and writes (parallel to `steps`).
    var stepIO: [StepIO] = []
    /// Keeps plan-owned constant storage alive.
    private let ownedConstants: [UnsafeMutablePointer<Float>]
    /// Keeps the model's mapped initializers that steps read in place alive.
    private let constantStorage: [AnyObject]
    /// The region the plan's kernels keep their buffers in; a session running the plan
    /// puts its arena there too when it needs a larger one, so that all of a first
    /// image's fresh memory shares pages.
    let memory: MemoryRegion

    init(inputShapes: [[Int]], steps: [NetworkStep], locations: [SlotLocation], arenaFloats: Int,
         outputs: [PlannedOutput], ownedConstants: [UnsafeMutablePointer<Float>], constantStorage: [AnyObject] = [],
         memory: MemoryRegion) {
        self.inputShapes = inputShapes
        self.steps = steps
        self.locations = locations
        self.arenaFloats = arenaFloats
        self.outputs = outputs
        self.ownedConstants = ownedConstants
        self.constantStorage = constantStorage
        self.memory = memory
    }

    deinit { ownedConstants.forEach { $0.deallocate() } }

    /// Points every slot at its memory for this run.
    func bind(table: UnsafeMutablePointer<UnsafeMutablePointer<Float>>, arena: UnsafeMutablePointer<Float>,
              inputs: [UnsafePointer<Float>]) {
        for (slot, location) in locations.enumerated() {
            switch location {
            case .arena(let offset): table[slot] = arena + offset
            case .constant(let p): table[slot] = p
            case .input(let i): table[slot] = UnsafeMutablePointer(mutating: inputs[i])
            }
        }
    }

    /// Rows the recurrent kernels of this plan work on together: 4 when every recurrence
    /// runs the fused AVX-512 step, else the GEMM micro-kernel's 6. A caller that picks
    /// its batch size (an explanation) takes a multiple, so no run ends in a partial tile.
    var recurrentRowTile: Int {
        let unfused = steps.contains { step in
            guard let layer = step as? RecurrentLayerStep else { return false }
            return layer.fused.contains { $0 == nil }
        }
        return unfused ? RecurrentLayerStep.gemmRows : 4
    }

    func execute(_ table: UnsafeMutablePointer<UnsafeMutablePointer<Float>>) {
        // Through the buffer: the plan keeps every step alive, so the loop need not retain them.
        steps.withUnsafeBufferPointer { steps in
            for i in steps.indices { steps[i].run(table) }
        }
    }
}
