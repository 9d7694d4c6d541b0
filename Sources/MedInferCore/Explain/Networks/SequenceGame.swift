/// A sequence model as a coalition game: a coalition's input takes its players' channels
/// (over their windows) and static columns from the explained sequence and everything
/// else from each background row; its value is the model's first output averaged over
/// the background rows. Coalitions run as one batch of sequences through a session.
///
/// When every recurrence runs forward and no static input is a player, the unmasked
/// prefix (the steps before the first window) is the same in every coalition: its state
/// is computed once (or given, by a stream) and the coalitions run only the masked steps
/// from it, through a plan in streaming mode.
public final class SequenceGame: CoalitionGame {
    public let playerCount: Int
    public private(set) var outputCount = 0
    public let preferredBatch: Int

    private let session: NetworkSession
    private let players: SequencePlayers
    private let sequenceInput: Int
    private let features: Int
    private let steps: Int
    /// The steps each coalition runs: [runStart, steps) of the explained sequence.
    private var runStart = 0
    private let sequence: FloatBuffer
    private let staticRows: [Int: FloatBuffer]
    private let background: FloatBuffer
    private let backgroundRows: Int
    private let backgroundSteps: Int
    private let backgroundStatics: [Int: FloatBuffer]
    /// The recurrent state before `runStart` (one batch-1 buffer per plan state), when
    /// coalitions start from a state instead of from step 0.
    private var startState: [FloatBuffer]?

    /// - sequence: `steps x features` values (the explained sequence).
    /// - statics: one row per static input of the model (the explained sequence's).
    /// - background: `rows x backgroundSteps x features`, backgroundSteps 1 or `steps`.
    /// - backgroundStatics: `rows x width` per static input.
    /// - state: the recurrent state before the sequence's first step, from a stream
    ///   (streaming-plan state order, batch 1); nil starts from the model's own state.
    public init(session: NetworkSession, players: SequencePlayers, sequence: UnsafeBufferPointer<Float>,
                steps: Int, statics: [Int: [Float]], background: UnsafeBufferPointer<Float>,
                backgroundRows: Int, backgroundSteps: Int, backgroundStatics: [Int: [Float]],
                state: [[Float]]? = nil) throws(MedInferError) {
        let model = session.model
        sequenceInput = try model.requireSequenceInput()
        self.session = session
        self.players = players
        features = players.features
        self.steps = steps
        guard steps >= 1, sequence.count == steps * features else {
            throw .internal("sequence holds \(sequence.count) values for \(steps) x \(features)")
        }
        guard backgroundRows >= 1, backgroundSteps == 1 || backgroundSteps == steps,
              background.count == backgroundRows * backgroundSteps * features else {
            throw .shapeMismatch("the background must be [rows, \(steps) or 1, \(features)]; got \(background.count) values for \(backgroundRows) rows of \(backgroundSteps) steps")
        }
        try Self.checkFinite(sequence, "the explained sequence")
        try Self.checkFinite(background, "the background")
        var rows: [Int: FloatBuffer] = [:], references: [Int: FloatBuffer] = [:]
        for index in model.staticInputs {
            let name = model.inputs[index].name
            guard let row = statics[index], let reference = backgroundStatics[index],
                  !row.isEmpty, reference.count == backgroundRows * row.count else {
                throw .invalidArgument("static input '\(name)' needs one row for the sequence and one per background row (\(backgroundRows))")
            }
            try row.withUnsafeBufferPointer { (p) throws(MedInferError) in try Self.checkFinite(p, "static input '\(name)'") }
            try reference.withUnsafeBufferPointer { (p) throws(MedInferError) in try Self.checkFinite(p, "the background of static input '\(name)'") }
            rows[index] = FloatBuffer(row)
            references[index] = FloatBuffer(reference)
        }
        self.sequence = FloatBuffer(sequence)
        staticRows = rows
        self.background = FloatBuffer(background)
        self.backgroundRows = backgroundRows
        self.backgroundSteps = backgroundSteps
        self.backgroundStatics = references
        playerCount = players.count
        // About 256 sequences per run: big enough for the batched recurrent kernels, small
        // enough that a plan's tensors stay in the tens of megabytes.
        preferredBatch = max(1, 256 / backgroundRows)

        if let state {
            startState = state.map { FloatBuffer($0) }
        } else if players.firstMaskedStep > 0 && players.staticPlayers == 0,
                  let prefix = try prefixState(steps: players.firstMaskedStep) {
            // The prefix is the same in every coalition: run it once.
            startState = prefix
            runStart = players.firstMaskedStep
        }
        outputCount = try Self.firstOutputCount(session.plan(for: shapes(rows: 1), mode: mode))
    }

    private static func checkFinite(_ values: UnsafeBufferPointer<Float>, _ what: String) throws(MedInferError) {
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw .invalidArgument("\(what) holds \(values[bad]) at index \(bad); explanations need finite values")
        }
    }

    static func firstOutputCount(_ plan: ExecutionPlan) -> Int {
        switch plan.outputs[0] {
        case .slot(_, let shape): return shape.reduce(1, *)
        case .constant(let c): return c.count
        }
    }

    private var mode: GraphPlanner.SequenceMode { startState == nil ? .plain : .streaming }

    private func shapes(rows: Int, steps runSteps: Int? = nil) -> [[Int]] {
        session.model.inputs.indices.map { i -> [Int] in
            i == sequenceInput ? [rows, runSteps ?? (steps - runStart), features] : [rows, staticRows[i]?.count ?? 0]
        }
    }

    /// The state after the first `prefix` steps of the explained sequence, or nil when the
    /// model cannot run in streaming mode (a reverse or bidirectional recurrence).
    private func prefixState(steps prefix: Int) throws(MedInferError) -> [FloatBuffer]? {
        let model = session.model
        let plan: ExecutionPlan
        do throws(MedInferError) {
            plan = try session.plan(for: shapes(rows: 1, steps: prefix), mode: .streaming)
        } catch {
            guard case .unsupported = error else { throw error }
            return nil
        }
        let state = plan.stateSizes.map { FloatBuffer(count: $0) }
        let output = FloatBuffer(count: Self.firstOutputCount(plan))
        var inputs = model.inputs.indices.map { i -> UnsafePointer<Float> in
            i == sequenceInput ? sequence.readOnly : staticRows[i]!.readOnly
        }
        inputs += state.map(\.readOnly)
        try session.run(plan: plan, inputs: inputs, firstOutput: output.pointer)
        return state
    }

    public func evaluate(members: UnsafePointer<UInt8>, count: Int, values: UnsafeMutablePointer<Double>) throws(MedInferError) {
        let model = session.model
        let rows = count * backgroundRows
        let runSteps = steps - runStart, rowFloats = runSteps * features
        let m = playerCount
        let batch = FloatBuffer(count: rows * rowFloats)
        // Rows are coalition-major, background rows inside.
        for n in 0 ..< count {
            let member = members + n * m
            for b in 0 ..< backgroundRows {
                let row = batch.pointer + (n * backgroundRows + b) * rowFloats
                for t in runStart ..< steps {
                    let out = row + (t - runStart) * features
                    let own = sequence.pointer + t * features
                    guard let first = players.player(step: t, channel: 0) else {
                        out.update(from: own, count: features)
                        continue
                    }
                    let reference = background.pointer + (b * backgroundSteps + (backgroundSteps == 1 ? 0 : t)) * features
                    for c in 0 ..< features { out[c] = member[first + c] != 0 ? own[c] : reference[c] }
                }
            }
        }
        var staticPlayer: [Int: Int] = [:]
        var next = 0
        for (input, width) in players.statics { staticPlayer[input] = next; next += width }
        var staticBatches: [Int: FloatBuffer] = [:]
        for index in model.staticInputs {
            let row = staticRows[index]!, width = row.count, reference = backgroundStatics[index]!
            let rowsOut = FloatBuffer(count: rows * width)
            for n in 0 ..< count {
                for b in 0 ..< backgroundRows {
                    let out = rowsOut.pointer + (n * backgroundRows + b) * width
                    for j in 0 ..< width {
                        let present = staticPlayer[index].map { members[n * m + $0 + j] != 0 } ?? true
                        out[j] = present ? row[j] : reference[b * width + j]
                    }
                }
            }
            staticBatches[index] = rowsOut
        }

        let plan = try session.plan(for: shapes(rows: rows), mode: mode)
        var state: [FloatBuffer] = []
        if let startState {
            guard startState.map({ $0.count * rows }) == plan.stateSizes else {
                throw .internal("state sizes \(startState.map(\.count)) x \(rows) differ from the plan's \(plan.stateSizes)")
            }
            state = startState.map { single in
                let copies = FloatBuffer(count: single.count * rows)
                for r in 0 ..< rows { (copies.pointer + r * single.count).update(from: single.pointer, count: single.count) }
                return copies
            }
        }
        var inputs = model.inputs.indices.map { i -> UnsafePointer<Float> in
            i == sequenceInput ? batch.readOnly : staticBatches[i]!.readOnly
        }
        inputs += state.map(\.readOnly)
        let k = outputCount
        let outputs = FloatBuffer(count: rows * k)
        try session.run(plan: plan, inputs: inputs, firstOutput: outputs.pointer)
        let scale = 1 / Double(backgroundRows)
        for n in 0 ..< count {
            for o in 0 ..< k {
                var sum = 0.0
                for b in 0 ..< backgroundRows { sum += Double(outputs[(n * backgroundRows + b) * k + o]) }
                values[n * k + o] = sum * scale
            }
        }
    }
}
