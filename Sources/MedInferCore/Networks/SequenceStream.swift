/// One growing sequence (one bed of a monitor): the recurrent state, the static inputs and
/// the step count, a few kilobytes. The model's weights, plans and tensor memory live in
/// sessions pooled by the model, borrowed for the length of one push, so a thousand
/// streams cost a thousand small states, not a thousand sessions.
///
/// Exact mode (every recurrence runs forward): the graph is planned for one time step with
/// each recurrence's initial state read from, and final state written to, this stream's
/// buffers; a push costs one step. Window mode: the last `window` samples are kept and
/// every push reruns the model on them.
public final class SequenceStream: @unchecked Sendable {
    public enum Mode: Equatable, Sendable {
        /// Exact where the model allows it, else a window of this many steps.
        case automatic(window: Int)
        case window(Int)
    }

    public let model: NetworkModel
    /// The window length, when this stream recomputes a window instead of carrying state.
    public let window: Int?
    public private(set) var steps: UInt64 = 0
    public let features: Int
    public let outputCount: Int

    private let sequenceInput: Int
    /// One allocation for the recurrent state buffers (one per entry of the exact plan's
    /// `stateSizes`) followed by the static rows.
    private var storage: UnsafeMutablePointer<Float>
    private var stateBuffers: [UnsafeMutablePointer<Float>] = []
    private var stateFloats = 0
    private var stateSizes: [Int] = []
    private var staticRows: [Int: UnsafeMutablePointer<Float>] = [:]
    private var staticsSet = Set<Int>()
    /// Model inputs then state buffers, as the exact plan binds them (the sample's entry
    /// changes per push; the others point into `storage`).
    private var boundInputs: [UnsafePointer<Float>] = []
    /// Window mode: the last samples, oldest first once `steps` >= window.
    private var recent: [Float] = []
    /// Steps an explanation may look back over (0: none kept).
    public let explainSteps: Int
    /// Exact mode with explanations: the last `explainSteps` samples (ring indexed by
    /// step % explainSteps) and the state after each of the last explainSteps + 1 steps
    /// (indexed by step % (explainSteps + 1)), so the state before any kept sample is there.
    private var historySamples: FloatBuffer?
    private var historyStates: FloatBuffer?

    public static let maxWindow = 4096

    public init(model: NetworkModel, mode: Mode, explainSteps: Int = 0) throws(MedInferError) {
        self.model = model
        let sequenceInput = try model.requireSequenceInput()
        self.sequenceInput = sequenceInput
        guard case .fixed(let f)? = model.inputs[sequenceInput].dims?[2], f > 0 else {
            throw .unsupported("the sequence input '\(model.inputs[sequenceInput].name)' does not fix its feature count")
        }
        features = f
        var window: Int?
        var sizes: [Int] = []
        switch mode {
        case .window(let w): window = w
        case .automatic(let w):
            do throws(MedInferError) {
                sizes = try model.withPooledSession { (session) throws(MedInferError) in
                    try session.plan(for: Self.shapes(model, sequenceInput, steps: 1), mode: .streaming).stateSizes
                }
            } catch {
                // Bidirectional or reverse recurrences need the whole prefix.
                guard case .unsupported = error else { throw error }
                window = w
            }
        }
        if let window {
            guard window >= 1, window <= Self.maxWindow else {
                throw .invalidArgument("window \(window) is outside 1...\(Self.maxWindow)")
            }
            recent.reserveCapacity(window * features)
            guard explainSteps <= window else {
                throw .invalidArgument("explain_steps \(explainSteps) exceeds the window of \(window) steps this stream recomputes")
            }
        }
        guard explainSteps >= 0, explainSteps <= Self.maxWindow else {
            throw .invalidArgument("explain_steps \(explainSteps) is outside 0...\(Self.maxWindow)")
        }
        self.explainSteps = explainSteps
        self.window = window
        let shapes = Self.shapes(model, sequenceInput, steps: 1)
        // Everything that can fail comes before the allocation: an initializer that throws
        // after it would leak it (deinit does not run on a partly initialized object).
        outputCount = try model.withPooledSession { (session) throws(MedInferError) in
            try session.outputShapes(inputShapes: shapes)[0].reduce(1, *)
        }
        stateSizes = sizes
        stateFloats = sizes.reduce(0, +)
        var total = stateFloats
        for i in model.staticInputs { total += shapes[i][1] }
        storage = .allocate(capacity: max(total, 1))
        storage.initialize(repeating: 0, count: max(total, 1))
        var offset = 0
        for size in sizes { stateBuffers.append(storage + offset); offset += size }
        for i in model.staticInputs { staticRows[i] = storage + offset; offset += shapes[i][1] }
        if window == nil && explainSteps > 0 {
            historySamples = FloatBuffer(count: explainSteps * features)
            historyStates = FloatBuffer(count: (explainSteps + 1) * stateFloats)
        }
    }

    private static func shapes(_ model: NetworkModel, _ sequence: Int, steps: Int) -> [[Int]] {
        model.inputs.indices.map { i -> [Int] in
            if i == sequence {
                if case .fixed(let f)? = model.inputs[i].dims?[2] { return [1, steps, f] }
                return [1, steps, 0]
            }
            let width: Int
            if let dims = model.inputs[i].dims, dims.count == 2, case .fixed(let w) = dims[1] { width = w } else { width = 0 }
            return [1, width]
        }
    }

    /// The row size of static input `index`, as the model declares it.
    public func staticWidth(_ index: Int) -> Int? {
        guard index != sequenceInput, index >= 0, index < model.inputs.count,
              let dims = model.inputs[index].dims, dims.count == 2, case .fixed(let w) = dims[1] else { return nil }
        return w
    }

    public func setStatic(_ index: Int, _ values: UnsafeBufferPointer<Float>) throws(MedInferError) {
        guard let width = staticWidth(index) else {
            throw .invalidArgument("input #\(index) is not a static input of fixed width")
        }
        guard values.count == width else {
            throw .shapeMismatch("static input '\(model.inputs[index].name)' takes \(width) values, got \(values.count)")
        }
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw .invalidArgument("static input '\(model.inputs[index].name)' value \(bad) is \(values[bad])")
        }
        staticRows[index]!.update(from: values.baseAddress!, count: width)
        staticsSet.insert(index)
    }

    deinit { storage.deallocate() }

    /// Consumes one sample and writes the output for the sequence so far. A rejected
    /// sample (wrong size, NaN or infinite values, missing statics) changes nothing.
    public func push(_ sample: UnsafeBufferPointer<Float>, output: UnsafeMutablePointer<Float>) throws(MedInferError) {
        guard sample.count == features else {
            throw .shapeMismatch("a sample of '\(model.inputs[sequenceInput].name)' has \(features) values, got \(sample.count)")
        }
        if let bad = sample.firstIndex(where: { !$0.isFinite }) {
            throw .invalidArgument("sample value \(bad) is \(sample[bad]); the sample was rejected and the stream is unchanged")
        }
        for index in model.staticInputs where !staticsSet.contains(index) {
            throw .invalidArgument("static input '\(model.inputs[index].name)' is not set")
        }
        if let window {
            if recent.count == window * features { recent.removeFirst(features) }
            recent.append(contentsOf: sample)
            let n = recent.count / features
            try runWindow(steps: n, output: output)
        } else if let historySamples, let historyStates {
            try runStep(sample.baseAddress!, output: output)
            (historySamples.pointer + Int(steps % UInt64(explainSteps)) * features).update(from: sample.baseAddress!, count: features)
            (historyStates.pointer + Int(steps % UInt64(explainSteps + 1)) * stateFloats).update(from: storage, count: stateFloats)
        } else {
            try runStep(sample.baseAddress!, output: output)
        }
        steps += 1
    }

    private func inputPointers(sequence: UnsafePointer<Float>) -> [UnsafePointer<Float>] {
        model.inputs.indices.map { i -> UnsafePointer<Float> in
            if i == sequenceInput { return sequence }
            return UnsafePointer(staticRows[i]!)
        }
    }

    private func runStep(_ sample: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>) throws(MedInferError) {
        if boundInputs.isEmpty {
            boundInputs = inputPointers(sequence: sample) + stateBuffers.map { UnsafePointer($0) }
        }
        boundInputs[sequenceInput] = sample
        let sequenceInput = sequenceInput
        try model.withPooledSession { (session) throws(MedInferError) in
            let plan: ExecutionPlan
            if let cached = session.streamingPlan {
                plan = cached
            } else {
                plan = try model.plan(inputShapes: Self.shapes(model, sequenceInput, steps: 1), mode: .streaming)
                session.streamingPlan = plan
            }
            try session.run(plan: plan, inputs: boundInputs, firstOutput: output)
        }
    }

    private func runWindow(steps n: Int, output: UnsafeMutablePointer<Float>) throws(MedInferError) {
        let shapes = Self.shapes(model, sequenceInput, steps: n)
        try recent.withUnsafeBufferPointer { (values) throws(MedInferError) in
            try model.withPooledSession { (session) throws(MedInferError) in
                let plan = try session.plan(for: shapes, mode: .plain)
                _ = try session.run(plan: plan, inputs: inputPointers(sequence: values.baseAddress!), outputs: [output])
            }
        }
    }

    /// The last `n` samples (oldest first) and, for an exact stream, the recurrent state
    /// before the first of them (one array per state buffer, plan order). `n` must not
    /// exceed the steps kept (`explainSteps`, or the window) nor the steps consumed.
    func history(steps n: Int) -> (samples: [Float], stateBefore: [[Float]]?) {
        if window != nil {
            return (Array(recent.suffix(n * features)), nil)
        }
        guard let historySamples, let historyStates else { return ([], nil) }
        var samples: [Float] = []
        samples.reserveCapacity(n * features)
        let first = steps - UInt64(n)
        for i in 0 ..< UInt64(n) {
            let slot = Int((first + i) % UInt64(explainSteps))
            samples.append(contentsOf: UnsafeBufferPointer(start: historySamples.pointer + slot * features, count: features))
        }
        // The state before step `first` is the one after step first - 1 (zero at step 0).
        let before: UnsafePointer<Float>? = first == 0
            ? nil : UnsafePointer(historyStates.pointer + Int((first - 1) % UInt64(explainSteps + 1)) * stateFloats)
        var state: [[Float]] = []
        var offset = 0
        for size in stateSizes {
            state.append(before.map { Array(UnsafeBufferPointer(start: $0 + offset, count: size)) }
                         ?? [Float](repeating: 0, count: size))
            offset += size
        }
        return (samples, state)
    }

    /// Steps an explanation can look back over now.
    public var explainableSteps: Int { min(Int(clamping: steps), explainSteps, window ?? Int.max) }

    /// The static row of input `index` as set (zeros if never set).
    func staticRow(_ index: Int) -> [Float] {
        guard let row = staticRows[index], let width = staticWidth(index) else { return [] }
        return Array(UnsafeBufferPointer(start: row, count: width))
    }

    public var staticsComplete: Bool { model.staticInputs.allSatisfy { staticsSet.contains($0) } }

    /// Back to step 0; static inputs are kept.
    public func reset() {
        storage.update(repeating: 0, count: stateFloats)
        recent.removeAll(keepingCapacity: true)
        steps = 0
    }
}

extension NetworkModel {
    /// Runs `body` with a session borrowed from the model's pool (made when none is free),
    /// so that streams share plans and tensor memory per thread in use, not per stream.
    func withPooledSession<R>(_ body: (NetworkSession) throws(MedInferError) -> R) throws(MedInferError) -> R {
        let session = sessionPool.withLock { $0.popLast() } ?? NetworkSession(pooledBy: self)
        defer { sessionPool.withLock { $0.append(session) } }
        return try body(session)
    }
}
