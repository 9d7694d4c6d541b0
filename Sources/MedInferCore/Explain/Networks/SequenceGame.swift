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
    /// No recurrence reads a static input: statics matter only after the last step.
    private let staticsIndependent: Bool

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
        for input in model.inputs {
            if case .fixed(let batch)? = input.dims?.first {
                throw .unsupported("input '\(input.name)' fixes its batch size to \(batch); explanations run coalitions as batches of sequences (export the model with a dynamic batch axis)")
            }
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
        // Up to 4096 coalitions per call, so that the stages below find many coalitions
        // that share a stage's input; each stage then runs in batches of 64 sequences
        // (measured best for LSTM(64) and GRU(64)).
        preferredBatch = max(1, 4096 / backgroundRows)

        staticsIndependent = !model.recurrences(read: model.staticInputs)
        if let state {
            startState = state.map { FloatBuffer($0) }
        } else if let sizes = try streamingStateSizes() {
            if players.firstMaskedStep > 0 && (players.staticPlayers == 0 || staticsIndependent) {
                // The prefix is the same in every coalition: run it once.
                startState = try prefixState(steps: players.firstMaskedStep)
                runStart = players.firstMaskedStep
            } else {
                startState = sizes.map { FloatBuffer(count: $0) }
            }
        }
        outputCount = try Self.firstOutputCount(session.plan(for: shapes(rows: 1), mode: mode))
        if state == nil, startState != nil, try !stagesReproduceWholeRun() {
            // The output reads more of the sequence than the recurrent state carries (say,
            // a mean over all steps' outputs): run every coalition over all steps.
            startState = nil
            runStart = 0
        }
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

    /// Whether running in stages from carried states gives the output of one plain run
    /// over all steps, checked on the explained sequence itself.
    private func stagesReproduceWholeRun() throws(MedInferError) -> Bool {
        let model = session.model
        let plan = try session.plan(for: model.inputs.indices.map { i -> [Int] in
            i == sequenceInput ? [1, steps, features] : [1, staticRows[i]?.count ?? 0]
        }, mode: .plain)
        let whole = FloatBuffer(count: outputCount)
        try session.run(plan: plan, inputs: model.inputs.indices.map { i -> UnsafePointer<Float> in
            i == sequenceInput ? sequence.readOnly : staticRows[i]!.readOnly
        }, firstOutput: whole.pointer)
        let everyone = [UInt8](repeating: 1, count: playerCount)
        var staged = [Double](repeating: 0, count: outputCount)
        try everyone.withUnsafeBufferPointer { (m) throws(MedInferError) in
            try staged.withUnsafeMutableBufferPointer { (v) throws(MedInferError) in
                try evaluate(members: m.baseAddress!, count: 1, values: v.baseAddress!)
            }
        }
        for o in 0 ..< outputCount where abs(staged[o] - Double(whole[o])) > 1e-5 * max(1, abs(Double(whole[o]))) {
            return false
        }
        return true
    }

    /// The batch-1 state sizes of a streaming plan, or nil when the model cannot carry
    /// state (a reverse or bidirectional recurrence, a nonzero initial state).
    private func streamingStateSizes() throws(MedInferError) -> [Int]? {
        do throws(MedInferError) {
            return try session.plan(for: shapes(rows: 1, steps: 1), mode: .streaming).stateSizes
        } catch {
            guard case .unsupported = error else { throw error }
            return nil
        }
    }

    /// The state after the first `prefix` steps of the explained sequence.
    private func prefixState(steps prefix: Int) throws(MedInferError) -> [FloatBuffer] {
        let model = session.model
        let plan = try session.plan(for: shapes(rows: 1, steps: prefix), mode: .streaming)
        let state = plan.stateSizes.map { FloatBuffer(count: $0) }
        let output = FloatBuffer(count: Self.firstOutputCount(plan))
        var inputs = model.inputs.indices.map { i -> UnsafePointer<Float> in
            i == sequenceInput ? sequence.readOnly : staticRows[i]!.readOnly
        }
        inputs += state.map(\.readOnly)
        try session.run(plan: plan, inputs: inputs, firstOutput: output.pointer)
        return state
    }

    /// Static players first when only the last step reads them, then the windows from the
    /// latest to the earliest: coalitions in one batch then agree on the early windows.
    public var enumerationOrder: [Int] {
        let statics = Array(0 ..< players.staticPlayers)
        var order = staticsIndependent ? statics : []
        for w in players.windows.indices.reversed() {
            order += (0 ..< features).map { players.staticPlayers + w * features + $0 }
        }
        return staticsIndependent ? order : order + statics
    }

    /// Sequences per network run: about 64, in whole tiles of the recurrent kernel (64 for
    /// the fused step's 4 rows, 66 for the GEMM micro-kernel's 6), so no run ends in a
    /// partial tile (measured: 66 rather than 64 rows made the GEMM path 7% faster).
    private lazy var rowsPerRun: Int = {
        let tile = (try? session.plan(for: shapes(rows: 1), mode: mode).recurrentRowTile) ?? 4
        return (64 + tile - 1) / tile * tile
    }()

    /// One stage of an evaluation: the steps up to `end`, and as bits the players whose
    /// presence changes what the stage computes.
    private struct Stage {
        var end: Int
        var mattering: [UInt64]
    }

    /// Coalitions run in stages along time, and each stage runs once per distinct input it
    /// sees: a stage that ends before a window starts cannot tell coalitions that differ
    /// only in that window apart, and the static inputs matter only at the last step when
    /// no recurrence reads them. So for a two-branch model (statics through a dense branch)
    /// the 2^4 static coalitions of each channel coalition share all steps but the last.
    /// Without a carried state (a model that cannot stream) there is one stage: everything.
    private var stages: [Stage] {
        var ends = [steps]
        if startState != nil {
            ends = players.windows.map(\.upperBound).filter { $0 > runStart && $0 < steps }
            // A last one-step stage only pays when it is where static players start to matter.
            if players.staticPlayers > 0 && staticsIndependent && steps - 1 > runStart && !ends.contains(steps - 1) {
                ends.append(steps - 1)
            }
            ends.append(steps)
            ends.sort()
        }
        let words = (playerCount + 63) / 64
        return ends.map { end in
            var mattering = [UInt64](repeating: 0, count: words)
            func set(_ player: Int) { mattering[player >> 6] |= 1 << UInt64(player & 63) }
            if end == steps || !staticsIndependent {
                for player in 0 ..< players.staticPlayers { set(player) }
            }
            // Windows not yet started by the stage's end do not matter.
            for (w, window) in players.windows.enumerated() where window.lowerBound < end {
                for c in 0 ..< features { set(players.staticPlayers + w * features + c) }
            }
            return Stage(end: end, mattering: mattering)
        }
    }

    // Buffers kept between `evaluate` calls (an explanation makes many).
    private var distinct = DistinctKeys()
    /// Two sets of stage states ([distinct rows][state] per plan state), alternating:
    /// a stage reads the previous stage's set and writes the other.
    private var stageStates: [[FloatBuffer]] = [[], []]
    /// The last stage's states (no later stage reads them), one run's rows.
    private var lastStates: [FloatBuffer] = []
    private var sequenceRows = FloatBuffer(count: 0)
    private var staticScratch: [Int: FloatBuffer] = [:]

    private static func reserve(_ buffers: inout [FloatBuffer], sizes: [Int]) -> [UnsafeMutablePointer<Float>] {
        if buffers.count != sizes.count || zip(buffers, sizes).contains(where: { $0.count < $1 }) {
            buffers = sizes.map { FloatBuffer(count: $0) }
        }
        return buffers.map(\.pointer)
    }

    private static func reserve(_ buffer: inout FloatBuffer, count: Int) -> UnsafeMutablePointer<Float> {
        if buffer.count < count { buffer = FloatBuffer(count: count) }
        return buffer.pointer
    }

    public func evaluate(members: UnsafePointer<UInt8>, count: Int, values: UnsafeMutablePointer<Double>) throws(MedInferError) {
        let rows = count * backgroundRows
        let m = playerCount, k = outputCount
        // Each coalition's members as bits; a row's key in a stage is its coalition's bits
        // that matter to the stage, then its background row.
        let words = (m + 63) / 64
        var bits = [UInt64](repeating: 0, count: count * words)
        for n in 0 ..< count {
            let member = members + n * m
            for w in 0 ..< words {
                // In a register and branch-free: members are random, a branch per player
                // mispredicts and a read-modify-write per player waits on the last one.
                var word: UInt64 = 0
                for i in w * 64 ..< min(m, w * 64 + 64) { word |= UInt64(member[i] != 0 ? 1 : 0) << UInt64(i & 63) }
                bits[n * words + w] = word
            }
        }
        let stateSizes = (startState ?? []).map(\.count)   // per row
        var parentStates: [UnsafePointer<Float>] = (startState ?? []).map(\.readOnly)
        var parentOf = [Int32](repeating: 0, count: rows), indexOf = parentOf
        var representative: [Int] = [], parentOfDistinct: [Int] = []
        var outputs = FloatBuffer(count: 0)
        var key = [UInt64](repeating: 0, count: words + 1)
        var stageStart = runStart
        let stages = self.stages
        for (number, stage) in stages.enumerated() {
            distinct.reset(width: words + 1, expected: rows)
            representative.removeAll(keepingCapacity: true)
            parentOfDistinct.removeAll(keepingCapacity: true)
            key.withUnsafeMutableBufferPointer { key in
                for n in 0 ..< count {
                    for w in 0 ..< words { key[w] = bits[n * words + w] & stage.mattering[w] }
                    for b in 0 ..< backgroundRows {
                        let r = n * backgroundRows + b
                        key[words] = UInt64(b)
                        let (index, isNew) = distinct.index(of: key.baseAddress!)
                        indexOf[r] = Int32(index)
                        if isNew {
                            representative.append(r)
                            parentOfDistinct.append(Int(parentOf[r]))
                        }
                    }
                }
            }
            let total = representative.count
            let last = number == stages.count - 1
            let reached = last ? [] : Self.reserve(&stageStates[number % 2], sizes: stateSizes.map { $0 * total })
            outputs = FloatBuffer(count: total * k)
            var first = 0
            while first < total {
                let n = min(rowsPerRun, total - first)
                let into = last ? Self.reserve(&lastStates, sizes: stateSizes.map { $0 * n })
                                : zip(reached, stateSizes).map { $0 + first * $1 }
                try runStage(steps: stageStart ..< stage.end, rows: representative[first ..< first + n],
                             parents: parentOfDistinct[first ..< first + n], from: parentStates, into: into,
                             outputs: outputs.pointer + first * k, members: members)
                first += n
            }
            parentStates = reached.map { UnsafePointer($0) }
            swap(&parentOf, &indexOf)
            stageStart = stage.end
        }
        let scale = 1 / Double(backgroundRows)
        for n in 0 ..< count {
            for o in 0 ..< k {
                var sum = 0.0
                for b in 0 ..< backgroundRows { sum += Double(outputs[Int(parentOf[n * backgroundRows + b]) * k + o]) }
                values[n * k + o] = sum * scale
            }
        }
    }

    /// Runs steps `range` for the given rows (row r = coalition r / backgroundRows masked
    /// with background row r % backgroundRows), row i starting from state row parents[i]
    /// of `parentStates` and leaving its state in row i of `into`; writes the outputs.
    private func runStage(steps range: Range<Int>, rows: ArraySlice<Int>, parents: ArraySlice<Int>,
                          from parentStates: [UnsafePointer<Float>], into reached: [UnsafeMutablePointer<Float>],
                          outputs: UnsafeMutablePointer<Float>, members: UnsafePointer<UInt8>) throws(MedInferError) {
        let model = session.model
        let count = rows.count, m = playerCount
        let rowFloats = range.count * features
        let batch = Self.reserve(&sequenceRows, count: count * rowFloats)
        let stepPlayer = range.map { players.player(step: $0, channel: 0) }   // per step, channel 0's player
        for (i, r) in rows.enumerated() {
            let member = members + (r / backgroundRows) * m, b = r % backgroundRows
            for t in range {
                let out = batch + i * rowFloats + (t - range.lowerBound) * features
                let own = sequence.pointer + t * features
                guard let first = stepPlayer[t - range.lowerBound] else {
                    out.update(from: own, count: features)
                    continue
                }
                let reference = background.pointer + (b * backgroundSteps + (backgroundSteps == 1 ? 0 : t)) * features
                for c in 0 ..< features { out[c] = member[first + c] != 0 ? own[c] : reference[c] }
            }
        }
        var inputs: [UnsafePointer<Float>] = []
        for i in model.inputs.indices {
            if i == sequenceInput {
                inputs.append(UnsafePointer(batch))
                continue
            }
            guard let row = staticRows[i], let reference = backgroundStatics[i] else {
                throw .internal("input \(i) is neither the sequence nor a static input")
            }
            let width = row.count
            let firstPlayer = players.firstPlayer(ofStatic: i)
            var scratch = staticScratch[i] ?? FloatBuffer(count: 0)
            let rowsOut = Self.reserve(&scratch, count: count * width)
            staticScratch[i] = scratch
            for (n, r) in rows.enumerated() {
                let member = members + (r / backgroundRows) * m, b = r % backgroundRows
                for j in 0 ..< width {
                    let present = firstPlayer.map { member[$0 + j] != 0 } ?? true
                    rowsOut[n * width + j] = present ? row[j] : reference[b * width + j]
                }
            }
            inputs.append(UnsafePointer(rowsOut))
        }
        let shapes = model.inputs.indices.map { i -> [Int] in
            i == sequenceInput ? [count, range.count, features] : [count, staticRows[i]?.count ?? 0]
        }
        let plan = try session.plan(for: shapes, mode: mode)
        // The plan reads each state from its buffer and writes it back in place.
        for (s, target) in zip(parentStates.indices, reached) {
            let size = plan.stateSizes[s] / count
            for (i, p) in parents.enumerated() {
                (target + i * size).update(from: parentStates[s] + p * size, count: size)
            }
            inputs.append(UnsafePointer(target))
        }
        try session.run(plan: plan, inputs: inputs, firstOutput: outputs)
    }
}

extension NetworkModel {
    /// Whether a recurrent operator (LSTM, GRU, RNN, Loop, Scan) reads, directly or
    /// through other nodes, any of the given inputs.
    func recurrences(read inputIndices: [Int]) -> Bool {
        var tainted = Set(inputIndices.map { inputs[$0].name })
        guard !tainted.isEmpty else { return false }
        let recurrent: Set<String> = ["LSTM", "GRU", "RNN", "Loop", "Scan"]
        for index in order {
            let node = graph.nodes[index]
            let reads = node.inputs.contains { tainted.contains($0) } || !GraphOrder.outerNames(of: node).isDisjoint(with: tainted)
            guard reads else { continue }
            if recurrent.contains(node.opType) { return true }
            for output in node.outputs where !output.isEmpty { tainted.insert(output) }
        }
        return false
    }
}

