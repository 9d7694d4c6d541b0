/// A value while planning: known now (folded), or a float tensor produced at run time.
enum PlanValue {
    case constant(ConstTensor)
    case tensor(RuntimeTensor)

    var shape: [Int] {
        switch self {
        case .constant(let c): return c.shape
        case .tensor(let t): return t.shape
        }
    }

    var constant: ConstTensor? {
        if case .constant(let c) = self { return c }
        return nil
    }
}

/// A dense row-major float32 tensor in a slot.
struct RuntimeTensor {
    var slot: Int
    var shape: [Int]
    var count: Int { shape.reduce(1, *) }
}

/// Builds an `ExecutionPlan`: slots, steps, constant folding of operations whose inputs
/// are all known, and the arena layout from each slot's lifetime.
final class PlanBuilder {
    private enum SlotKind { case arena(Int), constant(UnsafeMutablePointer<Float>), input(Int) }
    private var kinds: [SlotKind] = []
    private var firstWrite: [Int] = []
    private var lastRead: [Int] = []
    private(set) var steps: [NetworkStep] = []
    /// What each step reads and writes, in step order (for regional re-execution).
    private var stepIO: [StepIO] = []
    /// Every arena tensor keeps its own memory for the whole plan (no reuse of dead
    /// buffers), so that after a run every intermediate tensor still holds its values.
    var retainAll = false
    /// Whether steps may write into their consumer's own buffer (`divertLastStep`); off
    /// only to compare against plans that do not.
    var chainsLayers = true
    private var owned: [UnsafeMutablePointer<Float>] = []
    /// The plan's memory beyond its constants: the scratch below and the session's arena,
    /// side by side on as few pages as they fill (after the model's transformed weights,
    /// for a model's first plan).
    let kernelMemory: MemoryRegion
    /// Packing and transform memory that kernels use during their own step only, shared
    /// by all steps of the plan.
    lazy var kernelScratch = GemmWorkspace(memory: kernelMemory)
    /// Winograd's zero-bordered inputs, one layer's at a time in each. Two, so that a
    /// layer can write its output straight into the next layer's while reading its own
    /// (`divertLastStep`); the second is only allocated if a plan does that.
    lazy var paddedInputs = [GemmWorkspace(memory: kernelMemory), GemmWorkspace(memory: kernelMemory)]
    /// Total floats of arena slots so far, checked against the cap.
    private var requested = 0
    /// Bytes computed while planning (folded constants, constant copies, index and
    /// resampling tables), checked against `computedBytesLimit`.
    private var computedBytes = 0
    /// What planning may compute: `baseComputedBytes` plus the model file's own size, so
    /// that a small file cannot make planning allocate gigabytes (a chain of Expand or
    /// Identity nodes would otherwise multiply one initializer), while a model's folds of
    /// its own large weights still fit.
    let computedBytesLimit: Int

    /// What holds the memory of the model's mapped initializers (the file mapping): kept
    /// alive by the plan, whose steps read them in place.
    private let constantStorage: [AnyObject]

    init(modelBytes: Int, constantStorage: [AnyObject] = [], memory: MemoryRegion? = nil) {
        computedBytesLimit = Self.baseComputedBytes + max(0, modelBytes)
        self.constantStorage = constantStorage
        kernelMemory = memory ?? MemoryRegion()
    }

    /// Arena floats one plan may use (4 GiB).
    static let maxArenaFloats = 1 << 30
    /// Elements of one value computed while planning (folded constants, index maps).
    static let maxFoldedElements = 1 << 24
    /// Planning's allowance beyond the model file's size (48 MiB; see `computedBytesLimit`).
    static let baseComputedBytes = 48 << 20

    /// Counts `bytes` that planning is about to compute against the limit.
    func charge(_ bytes: Int, for label: @autoclosure () -> String) throws(MedInferError) {
        computedBytes += max(0, bytes)
        guard computedBytes <= computedBytesLimit else {
            throw .outOfMemory("\(label()): planning would compute more than \(computedBytesLimit >> 20) MiB of constants and tables (the limit is 48 MiB plus the model file's size)")
        }
    }

    deinit { owned.forEach { $0.deallocate() } }

    func inputSlot(_ index: Int) -> Int {
        kinds.append(.input(index)); firstWrite.append(-1); lastRead.append(-1)
        return kinds.count - 1
    }

    func newTensor(_ shape: [Int], for label: @autoclosure () -> String) throws(MedInferError) -> RuntimeTensor {
        let count = try Self.elementCount(shape, label())
        requested += count
        guard requested <= Self.maxArenaFloats else {
            throw .outOfMemory("\(label()): the network's tensors need more than \(Self.maxArenaFloats) floats")
        }
        kinds.append(.arena(max(count, 1))); firstWrite.append(steps.count); lastRead.append(-1)
        return RuntimeTensor(slot: kinds.count - 1, shape: shape)
    }

    static func elementCount(_ shape: [Int], _ label: @autoclosure () -> String) throws(MedInferError) -> Int {
        var count = 1
        for d in shape {
            guard d >= 0 else { throw .shapeMismatch("\(label()): negative dimension in \(shape)") }
            let (p, o) = count.multipliedReportingOverflow(by: d)
            guard !o, p <= maxArenaFloats else { throw .outOfMemory("\(label()): shape \(shape) is too large") }
            count = p
        }
        return count
    }

    /// A runtime view of a value. Initializers mapped from the model are read in place
    /// (no step writes to a constant slot); other constants get plan-owned storage.
    func tensor(_ value: PlanValue) throws(MedInferError) -> RuntimeTensor {
        switch value {
        case .tensor(let t): return t
        case .constant(let c):
            if case .mapped(let p, let n) = c.storage, n == c.count, !constantStorage.isEmpty {
                kinds.append(.constant(UnsafeMutablePointer(mutating: p))); firstWrite.append(-1); lastRead.append(-1)
                return RuntimeTensor(slot: kinds.count - 1, shape: c.shape)
            }
            let n = max(c.count, 1)
            try charge(4 * n, for: "a constant of shape \(c.shape)")
            let storage = UnsafeMutablePointer<Float>.allocate(capacity: n)
            storage.initialize(repeating: 0, count: n)
            try c.withFloatBytes { (p) throws(MedInferError) in UnsafeMutableRawPointer(storage).copyMemory(from: p, byteCount: 4 * c.count) }
            owned.append(storage)
            kinds.append(.constant(storage)); firstWrite.append(-1); lastRead.append(-1)
            return RuntimeTensor(slot: kinds.count - 1, shape: c.shape)
        }
    }

    /// Adds a step. When every input is a constant, the step runs now instead and its
    /// outputs become constants (constant folding), so the plan never repeats it.
    func emit(_ step: NetworkStep, reading inputs: [RuntimeTensor], writing outputs: [RuntimeTensor],
              allConstant: Bool) throws(MedInferError) -> [PlanValue] {
        if allConstant {
            for out in outputs where out.count > Self.maxFoldedElements {
                throw .outOfMemory("folding a constant of shape \(out.shape) (over \(Self.maxFoldedElements) elements)")
            }
            for out in outputs { try charge(4 * out.count, for: "folding a constant of shape \(out.shape)") }
            let table = UnsafeMutablePointer<UnsafeMutablePointer<Float>>.allocate(capacity: max(kinds.count, 1))
            defer { table.deallocate() }
            var scratch: [UnsafeMutablePointer<Float>] = []
            for (slot, kind) in kinds.enumerated() {
                switch kind {
                case .constant(let p): table[slot] = p
                case .arena(let n):
                    if outputs.contains(where: { $0.slot == slot }) {
                        let p = UnsafeMutablePointer<Float>.allocate(capacity: n)
                        p.initialize(repeating: 0, count: n)
                        scratch.append(p)
                        table[slot] = p
                    } else {
                        table[slot] = UnsafeMutablePointer(bitPattern: 16)!
                    }
                case .input: table[slot] = UnsafeMutablePointer(bitPattern: 16)!
                }
            }
            step.run(table)
            let results = outputs.map { out -> PlanValue in
                .constant(ConstTensor(shape: out.shape, floats: Array(UnsafeBufferPointer(start: table[out.slot], count: out.count))))
            }
            scratch.forEach { $0.deallocate() }
            // The folded outputs never reach the arena.
            for out in outputs {
                if case .arena(let n) = kinds[out.slot] { requested -= n }
                kinds[out.slot] = .arena(0)
            }
            return results
        }
        for t in inputs { lastRead[t.slot] = steps.count }
        steps.append(step)
        stepIO.append(StepIO(reads: inputs, writes: outputs))
        return outputs.map { .tensor($0) }
    }

    /// Takes back the last step when it is the one that wrote `slot` and nothing has read
    /// `slot` yet, so that its consumer can compute from the step's own inputs (a Resize
    /// reading an image through its layout transpose). The slot then takes no memory.
    func withdrawLastStep(writing slot: Int) -> NetworkStep? {
        guard releaseLastWrite(slot) else { return nil }
        // The step's inputs keep lastRead = its index: the consumer emitted next takes it.
        stepIO.removeLast()
        return steps.removeLast()
    }

    /// Lets the last step write `slot`'s values into its consumer's own buffer instead (a
    /// Winograd layer's padded input; the consumer is emitted next), when it writes only
    /// `slot`, nothing has read `slot` yet and the plan keeps no intermediate tensors. The
    /// slot then takes no memory; the step still names it, and its kernel ignores it.
    func divertLastStep(writing slot: Int) -> Bool {
        guard chainsLayers, !retainAll, releaseLastWrite(slot) else { return false }
        stepIO[stepIO.count - 1].writes = []
        return true
    }

    /// Frees `slot`'s arena memory when the last step writes only it and nothing read it.
    private func releaseLastWrite(_ slot: Int) -> Bool {
        guard let io = stepIO.last, io.writes.count == 1, io.writes[0].slot == slot, lastRead[slot] == -1,
              case .arena(let n) = kinds[slot] else { return false }
        requested -= n
        kinds[slot] = .arena(0)
        return true
    }

    /// Lays out the arena: slots whose lifetimes overlap never share memory; others do.
    func finish(inputShapes: [[Int]], outputs: [PlannedOutput]) -> ExecutionPlan {
        let end = steps.count
        for output in outputs { if case .slot(let s, _) = output { lastRead[s] = end } }
        var locations: [SlotLocation] = []
        var placed: [(offset: Int, size: Int, from: Int, to: Int)] = []
        var arenaSize = 0
        // Larger slots first: a greedy first-fit that packs well for CNN activations.
        let order = kinds.indices.sorted { a, b in
            if case .arena(let x) = kinds[a], case .arena(let y) = kinds[b] { return x > y }
            return a < b
        }
        var offsets = [Int](repeating: 0, count: kinds.count)
        for slot in order {
            guard case .arena(let size) = kinds[slot] else { continue }
            let from = retainAll ? 0 : firstWrite[slot], to = retainAll ? end : max(lastRead[slot], from)
            let rounded = (size + 15) & ~15   // 64-byte aligned starts
            var candidate = 0
            let overlapping = placed.filter { !($0.to < from || to < $0.from) }.sorted { $0.offset < $1.offset }
            for p in overlapping {
                if candidate + rounded <= p.offset { break }
                candidate = max(candidate, p.offset + p.size)
            }
            placed.append((candidate, rounded, from, to))
            offsets[slot] = candidate
            arenaSize = max(arenaSize, candidate + rounded)
        }
        for (slot, kind) in kinds.enumerated() {
            switch kind {
            case .arena: locations.append(.arena(offset: offsets[slot]))
            case .constant(let p): locations.append(.constant(p))
            case .input(let i): locations.append(.input(i))
            }
        }
        let plan = ExecutionPlan(inputShapes: inputShapes, steps: steps, locations: locations,
                                 arenaFloats: arenaSize, outputs: outputs, ownedConstants: owned,
                                 constantStorage: constantStorage, memory: kernelMemory)
        plan.stepIO = stepIO
        owned = []
        return plan
    }
}
