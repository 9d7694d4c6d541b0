import MedInferKernelsAVX512

/// LSTM and GRU (ONNX semantics, every attribute exporters write: direction, layout,
/// linear_before_reset, sequence_lens, initial_h/initial_c, peepholes, clip). One step runs
/// a whole layer: the input projection of all time steps as one GEMM per direction, then the
/// recurrence (`Kernels/Recurrent.swift`).
///
/// Two planning modes serve the sequence API: with engine-given lengths every recurrence
/// reads per-sequence lengths from an extra plan input; in streaming mode every recurrence
/// reads its initial state from, and writes its final state to, buffers the stream owns.

final class RecurrentLayerStep: NetworkStep {
    struct Slots {
        var x: Int
        var lengths: Int?
        var initialH: Int?, initialC: Int?
        var y: Int?, yH: Int?, yC: Int?
        /// Stream-owned state ([directions][batch][hidden] each), read first, written last.
        var stateH: Int?, stateC: Int?
        var scratch: Int
    }

    let directions: [RecurrentWeights]
    let reversed: [Bool]
    let steps: Int, batch: Int
    /// ONNX layout 1: X [batch, steps, input], Y [batch, steps, dirs, hidden], states [batch, dirs, hidden].
    let batchMajor: Bool
    let clip: Float
    /// Per direction, the weights' layout for the fused AVX-512 step when this layer can
    /// use it (`fusedSlices(_:clip:)`), else nil.
    let fused: [UnsafeMutablePointer<Float>?]
    let slots: Slots
    let workspace: GemmWorkspace
    /// Padded steps of Y repeat the output at the sequence's own last step (engine-given
    /// lengths) instead of ONNX's zeros, so a graph reading Y's last step (tf2onnx's
    /// Keras export does) sees each sequence's last step.
    let padWithLastStep: Bool

    init(_ layer: Operators.RecurrentLayer, slots: Slots, workspace: GemmWorkspace, padWithLastStep: Bool) {
        directions = layer.directions; reversed = layer.reversed; steps = layer.steps; batch = layer.batch
        batchMajor = layer.batchMajor; clip = layer.clip
        fused = layer.directions.map { Self.fusedSlices($0, clip: layer.clip) }
        self.slots = slots; self.workspace = workspace; self.padWithLastStep = padWithLastStep
    }

    /// Below this many rows a product skips the packed GEMM (`SmallRowsGemm`).
    static let gemmRows = 6

    /// The fused AVX-512 steps cover cells without peepholes or clipping (and only the
    /// cells and sizes `RecurrentWeights.fusedSlices` is made for).
    static func fusedSlices(_ weights: RecurrentWeights, clip: Float) -> UnsafeMutablePointer<Float>? {
        clip.isFinite || !weights.peepholes.isEmpty ? nil : weights.fusedSlices
    }

    /// The scratch one run needs: the projection of every step (not for a fused step,
    /// which projects each step itself), then per step the recurrent products, h, c, a
    /// GRU's gates, r⊙h and the fused step's next h. Planning-time shapes can be huge (an
    /// empty input dimension keeps the others unchecked), so the sizes are checked.
    static func scratchShape(steps: Int, batch: Int, weights: RecurrentWeights, clip: Float, _ label: String) throws(MedInferError) -> [Int] {
        let projection = fusedSlices(weights, clip: clip) != nil ? 0 : try PlanBuilder.elementCount([steps, batch, weights.width], label)
        let perStep = try PlanBuilder.elementCount([batch, weights.width + 6 * weights.hidden], label)
        return [projection + perStep + 64]
    }

    /// Offset of state (direction d, row b) in an ONNX initial/final state tensor.
    private func stateOffset(_ d: Int, _ b: Int, hidden: Int) -> Int {
        batchMajor ? (b * directions.count + d) * hidden : (d * batch + b) * hidden
    }

    private func yOffset(_ t: Int, _ d: Int, _ b: Int, hidden: Int) -> Int {
        (batchMajor ? (b * steps + t) * directions.count + d : (t * directions.count + d) * batch + b) * hidden
    }

    func run(_ table: UnsafeMutablePointer<UnsafeMutablePointer<Float>>) {
        let x = UnsafePointer(table[slots.x])
        let scratch = table[slots.scratch]
        let lengths: [Int]? = slots.lengths.map { slot in
            (0 ..< batch).map { b in
                let v = table[slot][b]
                return v.isNaN ? 0 : Int(Swift.max(0, Swift.min(Float(steps), v)))
            }
        }
        var active = [UInt8](repeating: 1, count: batch)
        for (d, weights) in directions.enumerated() {
            let hidden = weights.hidden, width = weights.width
            let slices = fused[d]
            let projection = scratch
            let recurrent = projection + (slices == nil ? steps * batch * width : 0)
            var h = recurrent + batch * width
            let c = h + batch * hidden
            let gates = c + batch * hidden           // GRU z, r: [batch][2·hidden]
            let resetHidden = gates + 2 * batch * hidden  // GRU (r ⊙ h): [batch][hidden]
            var hNext = resetHidden + batch * hidden  // a fused step's output h

            // Input projection of every step: rows in X's own order (t·B + b, or b·T + t).
            // (A fused step projects each step itself.)
            if slices == nil { weights.projectionBias.withUnsafeBufferPointer { bias in
                if steps * batch < Self.gemmRows {
                    SmallRowsGemm.multiply(rows: steps * batch, a: x, lda: weights.inputSize, depth: weights.inputSize,
                                           b: weights.inputWeights, ldb: width, panels: nil, columns: 0 ..< width,
                                           bias: bias.baseAddress, out: projection, ldo: width)
                    return
                }
                Gemm.multiply(m: steps * batch, n: width, k: weights.inputSize,
                              a: StridedMatrixA(base: x, rowStride: weights.inputSize, colStride: 1),
                              b: StridedMatrixB(base: weights.inputWeights, rowStride: width, colStride: 1),
                              c: projection, ldc: width,
                              epilogue: Gemm.Epilogue(columnBias: bias.baseAddress), workspace: workspace)
            } }
            // Initial state.
            for b in 0 ..< batch {
                if let s = slots.stateH {
                    (h + b * hidden).update(from: table[s] + (d * batch + b) * hidden, count: hidden)
                } else if let s = slots.initialH {
                    (h + b * hidden).update(from: table[s] + stateOffset(d, b, hidden: hidden), count: hidden)
                } else {
                    (h + b * hidden).update(repeating: 0, count: hidden)
                }
                if let s = slots.stateC {
                    (c + b * hidden).update(from: table[s] + (d * batch + b) * hidden, count: hidden)
                } else if let s = slots.initialC {
                    (c + b * hidden).update(from: table[s] + stateOffset(d, b, hidden: hidden), count: hidden)
                } else {
                    (c + b * hidden).update(repeating: 0, count: hidden)
                }
            }
            let y = slots.y.map { table[$0] }
            for s in 0 ..< steps {
                let t = reversed[d] ? steps - 1 - s : s
                let projectionRow = { (b: Int) in projection + (self.batchMajor ? b * self.steps + t : t * self.batch + b) * width }
                if let slices {
                    if let lengths { for b in 0 ..< batch { active[b] = t < lengths[b] ? 1 : 0 } }
                    let stepX = x + (batchMajor ? t : t * batch) * weights.inputSize
                    let xStride = (batchMajor ? steps : 1) * weights.inputSize
                    active.withUnsafeBufferPointer { mask in
                        let rowsActive = lengths == nil ? nil : mask.baseAddress
                        weights.projectionBias.withUnsafeBufferPointer { bias in
                            if weights.cell == .lstm {
                                lstmStep16(rows: batch, inputSize: weights.inputSize, hidden: hidden, x: stepX, xStride: xStride,
                                           h: h, slices: slices, bias: bias.baseAddress!, c: c, hNext: hNext, active: rowsActive)
                            } else {
                                weights.resetBias.withUnsafeBufferPointer { resetBias in
                                    gruStep16(rows: batch, inputSize: weights.inputSize, hidden: hidden, x: stepX, xStride: xStride,
                                              h: h, slices: slices, bias: bias.baseAddress!, resetBias: resetBias.baseAddress!,
                                              hNext: hNext, active: rowsActive)
                                }
                            }
                        }
                    }
                    swap(&h, &hNext)
                    copyOutputs(t: t, d: d, h: h, hidden: hidden, lengths: lengths, y: y)
                    continue
                }
                // Columns that multiply h directly: all, or z and r for a GRU without linear-before-reset.
                product(rows: batch, h: h, hidden: hidden, weights: weights, packed: weights.packedRecurrent,
                        columnOffset: 0, out: recurrent, ldo: width)
                switch weights.cell {
                case .lstm:
                    weights.peepholes.withUnsafeBufferPointer { peepholes in
                        for b in 0 ..< batch where lengths.map({ t < $0[b] }) ?? true {
                            Recurrent.lstmCell(hidden: hidden, projection: projectionRow(b), recurrent: recurrent + b * width,
                                               peepholes: peepholes.isEmpty ? nil : peepholes.baseAddress, clip: clip,
                                               c: c + b * hidden, h: h + b * hidden)
                        }
                    }
                case .gru(let linearBeforeReset):
                    for b in 0 ..< batch {
                        Recurrent.gruGates(hidden: hidden, projection: projectionRow(b), recurrent: recurrent + b * width,
                                           clip: clip, gates: gates + b * 2 * hidden)
                    }
                    if let resetColumns = weights.packedResetColumns {
                        for b in 0 ..< batch {
                            for j in 0 ..< hidden { resetHidden[b * hidden + j] = gates[b * 2 * hidden + hidden + j] * h[b * hidden + j] }
                        }
                        product(rows: batch, h: resetHidden, hidden: hidden, weights: weights, packed: resetColumns,
                                columnOffset: 2 * hidden, out: recurrent + 2 * hidden, ldo: width)
                    }
                    weights.resetBias.withUnsafeBufferPointer { resetBias in
                        for b in 0 ..< batch where lengths.map({ t < $0[b] }) ?? true {
                            Recurrent.gruUpdate(hidden: hidden, projection: projectionRow(b), gates: gates + b * 2 * hidden,
                                                hiddenProduct: recurrent + b * width + 2 * hidden,
                                                resetBias: linearBeforeReset ? resetBias.baseAddress : nil, clip: clip,
                                                h: h + b * hidden)
                        }
                    }
                }
                copyOutputs(t: t, d: d, h: h, hidden: hidden, lengths: lengths, y: y)
            }
            if let y, let lengths, padWithLastStep, reversed[d] {
                // A reverse pass reaches a sequence's last step first; repeat its output.
                for b in 0 ..< batch where lengths[b] > 0 {
                    let last = y + yOffset(lengths[b] - 1, d, b, hidden: hidden)
                    for t in lengths[b] ..< steps { (y + yOffset(t, d, b, hidden: hidden)).update(from: last, count: hidden) }
                }
            }
            for b in 0 ..< batch {
                if let s = slots.yH { (table[s] + stateOffset(d, b, hidden: hidden)).update(from: h + b * hidden, count: hidden) }
                if let s = slots.yC { (table[s] + stateOffset(d, b, hidden: hidden)).update(from: c + b * hidden, count: hidden) }
                if let s = slots.stateH { (table[s] + (d * batch + b) * hidden).update(from: h + b * hidden, count: hidden) }
                if let s = slots.stateC { (table[s] + (d * batch + b) * hidden).update(from: c + b * hidden, count: hidden) }
            }
        }
    }

    /// Step t's h into Y (when the graph reads Y).
    @inline(__always)
    private func copyOutputs(t: Int, d: Int, h: UnsafePointer<Float>, hidden: Int, lengths: [Int]?, y: UnsafeMutablePointer<Float>?) {
        guard let y else { return }
        if lengths == nil && !batchMajor {
            // Y[t][d] is one [batch][hidden] block, laid out like h: one copy.
            (y + yOffset(t, d, 0, hidden: hidden)).update(from: h, count: batch * hidden)
            return
        }
        for b in 0 ..< batch {
            let row = y + yOffset(t, d, b, hidden: hidden)
            if lengths.map({ t < $0[b] }) ?? true {
                row.update(from: h + b * hidden, count: hidden)
            } else if padWithLastStep && !reversed[d] {
                row.update(from: h + b * hidden, count: hidden)  // the state stopped at the last step
            } else {
                row.update(repeating: 0, count: hidden)
            }
        }
    }

    /// h·Rᵀ for the columns `packed` holds (starting at `columnOffset` of Rᵀ): the
    /// register-blocked product for a few rows (streaming, small batches), the packed GEMM
    /// for a batch.
    private func product(rows: Int, h: UnsafePointer<Float>, hidden: Int, weights: RecurrentWeights, packed: PrepackedB,
                         columnOffset: Int, out: UnsafeMutablePointer<Float>, ldo: Int) {
        if rows < Self.gemmRows {
            SmallRowsGemm.multiply(rows: rows, a: h, lda: hidden, depth: hidden, b: weights.recurrentWeights, ldb: weights.width,
                                   panels: weights.recurrentPanels, columns: columnOffset ..< columnOffset + packed.width,
                                   bias: nil, out: out, ldo: ldo)
        } else {
            Gemm.multiply(m: rows, n: packed.width, k: hidden,
                          a: StridedMatrixA(base: h, rowStride: hidden, colStride: 1), b: packed,
                          c: out, ldc: ldo, epilogue: .init(), workspace: workspace)
        }
    }
}

extension Operators {
    static func lstm(_ c: NodeContext) throws(MedInferError) -> [PlanValue] { try recurrentLayer(c, lstm: true) }
    static func gru(_ c: NodeContext) throws(MedInferError) -> [PlanValue] { try recurrentLayer(c, lstm: false) }

    private static func recurrentLayer(_ c: NodeContext, lstm: Bool) throws(MedInferError) -> [PlanValue] {
        let op = lstm ? "LSTM" : "GRU"
        let gateCount = lstm ? 4 : 3
        let x = try c.input(0)
        guard x.shape.count == 3 else { throw .shapeMismatch("\(op) input X must be 3-D, got \(x.shape)") }
        let layout = try c.int("layout", 0)
        guard layout == 0 || layout == 1 else { throw .parse("\(op) layout must be 0 or 1, got \(layout)") }
        let batchMajor = layout == 1
        let steps = batchMajor ? x.shape[1] : x.shape[0]
        let batch = batchMajor ? x.shape[0] : x.shape[1]
        let inputSize = x.shape[2]
        let direction = try c.string("direction", "forward")
        let reversed: [Bool]
        switch direction {
        case "forward": reversed = [false]
        case "reverse": reversed = [true]
        case "bidirectional": reversed = [false, true]
        default: throw .parse("\(op) direction '\(direction)' is not forward, reverse or bidirectional")
        }
        let directionCount = reversed.count
        guard let w = try c.constantInput(1, "W"), let r = try c.constantInput(2, "R") else {
            throw .parse("\(op) needs inputs W and R")
        }
        guard w.shape.count == 3, w.shape[0] == directionCount, w.shape[2] == inputSize, w.shape[1] % gateCount == 0 else {
            throw .shapeMismatch("\(op) W must be [\(directionCount), \(gateCount)·hidden, \(inputSize)], got \(w.shape)")
        }
        let hidden = w.shape[1] / gateCount
        guard hidden > 0 else { throw .shapeMismatch("\(op) hidden size is 0") }
        if let declared = try c.ints("hidden_size")?.first, declared != hidden {
            throw .shapeMismatch("\(op) hidden_size is \(declared) but W has \(hidden) per gate")
        }
        guard r.shape == [directionCount, gateCount * hidden, hidden] else {
            throw .shapeMismatch("\(op) R must be [\(directionCount), \(gateCount * hidden), \(hidden)], got \(r.shape)")
        }
        let bias = try c.constantInput(3, "B")
        if let bias, bias.shape != [directionCount, 2 * gateCount * hidden] {
            throw .shapeMismatch("\(op) B must be [\(directionCount), \(2 * gateCount * hidden)], got \(bias.shape)")
        }
        let peepholes = lstm ? try c.constantInput(7, "P") : nil
        if let peepholes, peepholes.shape != [directionCount, 3 * hidden] {
            throw .shapeMismatch("LSTM P must be [\(directionCount), \(3 * hidden)], got \(peepholes.shape)")
        }
        let defaults = lstm ? ["Sigmoid", "Tanh", "Tanh"] : ["Sigmoid", "Tanh"]
        if let activations = c.attribute("activations") {
            guard case .strings(let names) = activations,
                  names == Array([[String]](repeating: defaults, count: directionCount).joined()) else {
                throw .unsupported("\(op) activations other than the defaults \(defaults) are not supported")
            }
        }
        for name in ["activation_alpha", "activation_beta"] where c.attribute(name) != nil {
            if case .floats(let list)? = c.attribute(name), list.isEmpty { continue }
            throw .unsupported("\(op) attribute '\(name)' is not supported (only the default activations are)")
        }
        if lstm, try c.int("input_forget", 0) != 0 { throw .unsupported("LSTM input_forget = 1 is not supported") }
        var clip = Float.infinity
        if c.attribute("clip") != nil {
            clip = try c.float("clip", 0)
            guard clip > 0 else { throw .parse("\(op) clip must be positive, got \(clip)") }
        }
        let linearBeforeReset = lstm ? false : try c.int("linear_before_reset", 0) != 0
        let cell: RecurrentWeights.Cell = lstm ? .lstm : .gru(linearBeforeReset: linearBeforeReset)

        let directions = try (0 ..< directionCount).map { (d) throws(MedInferError) -> RecurrentWeights in
            try cachedWeights(c, cell: cell, direction: d, hidden: hidden, inputSize: inputSize, w: w, r: r, bias: bias, peepholes: peepholes)
        }

        let stateShape = batchMajor ? [batch, directionCount, hidden] : [directionCount, batch, hidden]
        func state(_ index: Int, _ name: String) throws(MedInferError) -> RuntimeTensor? {
            guard let v = c.optionalInput(index) else { return nil }
            guard v.shape == stateShape else { throw .shapeMismatch("\(op) \(name) must be \(stateShape), got \(v.shape)") }
            // Exporters write the zero state explicitly (tf2onnx: Expand of zeros to the batch).
            if let k = v.constant, k.floatValues.allSatisfy({ $0 == 0 }) { return nil }
            return try c.builder.tensor(v)
        }
        let initialH = try state(5, "initial_h")
        let initialC = lstm ? try state(6, "initial_c") : nil

        let outputs = c.node.outputs
        func wanted(_ i: Int) -> Bool { i < outputs.count && !outputs[i].isEmpty }
        let layer = RecurrentLayer(name: op, directions: directions, reversed: reversed, steps: steps, batch: batch,
                                   batchMajor: batchMajor, clip: clip, x: x, initialH: initialH, initialC: initialC,
                                   fileLengths: c.optionalInput(4),
                                   yShape: wanted(0) ? (batchMajor ? [batch, steps, directionCount, hidden] : [steps, directionCount, batch, hidden]) : nil,
                                   yHShape: wanted(1) ? stateShape : nil, yCShape: lstm && wanted(2) ? stateShape : nil)
        let result = try emitRecurrentLayer(c, layer)
        let none = PlanValue.constant(ConstTensor(shape: [0], floats: []))
        return [result.y ?? none, result.yH ?? none] + (lstm ? [result.yC ?? none] : [])
    }

    /// A planned recurrent layer: weights per direction, geometry, and the values it reads.
    struct RecurrentLayer {
        var name: String
        var directions: [RecurrentWeights]
        var reversed: [Bool]
        var steps: Int, batch: Int
        var batchMajor: Bool
        var clip: Float
        var x: PlanValue
        var initialH: RuntimeTensor?, initialC: RuntimeTensor?
        var fileLengths: PlanValue?
        /// Shapes of the outputs wanted (nil: not computed).
        var yShape: [Int]?, yHShape: [Int]?, yCShape: [Int]?
    }

    /// Emits a recurrent layer's step, with the lengths and stream state that the planning
    /// mode asks for.
    static func emitRecurrentLayer(_ c: NodeContext, _ layer: RecurrentLayer) throws(MedInferError) -> (y: PlanValue?, yH: PlanValue?, yC: PlanValue?) {
        let op = layer.name, batch = layer.batch, hidden = layer.directions[0].hidden
        let lstm = layer.directions[0].cell == .lstm
        var lengths: RuntimeTensor?
        let mode = c.planner.sequenceMode
        if let engineLengths = c.planner.lengthsInput {
            lengths = engineLengths   // the caller's per-sequence lengths replace the file's
        } else if let given = layer.fileLengths {
            guard given.shape == [batch] else { throw .shapeMismatch("\(op) sequence_lens must be [\(batch)], got \(given.shape)") }
            lengths = try c.builder.tensor(given)
        }
        var stateH: RuntimeTensor?, stateC: RuntimeTensor?
        if mode == .streaming {
            guard layer.reversed == [false] else {
                throw .unsupported("\(op) runs backwards in time: streaming one step at a time needs forward recurrences (use window mode)")
            }
            guard layer.initialH == nil, layer.initialC == nil else {
                throw .unsupported("\(op) starts from a nonzero initial state: streaming starts from zero state")
            }
            stateH = c.planner.streamState(floats: batch * hidden)
            if lstm { stateC = c.planner.streamState(floats: batch * hidden) }
        }
        let y = try layer.yShape.map { (shape) throws(MedInferError) in try c.newTensor(shape) }
        let yH = try layer.yHShape.map { (shape) throws(MedInferError) in try c.newTensor(shape) }
        let yC = try layer.yCShape.map { (shape) throws(MedInferError) in try c.newTensor(shape) }
        let scratch = try c.newTensor(RecurrentLayerStep.scratchShape(steps: layer.steps, batch: batch, weights: layer.directions[0],
                                                                                  clip: layer.clip, op))
        let xTensor = try c.builder.tensor(layer.x)
        let slots = RecurrentLayerStep.Slots(
            x: xTensor.slot, lengths: lengths?.slot, initialH: layer.initialH?.slot, initialC: layer.initialC?.slot,
            y: y?.slot, yH: yH?.slot, yC: yC?.slot, stateH: stateH?.slot, stateC: stateC?.slot, scratch: scratch.slot)
        let step = RecurrentLayerStep(layer, slots: slots, workspace: c.builder.kernelScratch, padWithLastStep: mode == .lengths)
        let reads = [xTensor, scratch] + [lengths, layer.initialH, layer.initialC, stateH, stateC].compactMap { $0 }
        let writes = [y, yH, yC, scratch].compactMap { $0 }
        let folded = c.allInputsConstant && layer.x.constant != nil && mode == .plain
        let results = try c.builder.emit(step, reading: reads, writing: writes, allConstant: folded)
        var next = 0
        func take(_ t: RuntimeTensor?) -> PlanValue? {
            guard t != nil else { return nil }
            defer { next += 1 }
            return results[next]
        }
        let yValue = take(y), yHValue = take(yH), yCValue = take(yC)
        return (yValue, yHValue, yCValue)
    }

    static func cachedWeights(_ c: NodeContext, cell: RecurrentWeights.Cell, direction d: Int, hidden: Int, inputSize: Int,
                                      w: ConstTensor, r: ConstTensor, bias: ConstTensor?, peepholes: ConstTensor?) throws(MedInferError) -> RecurrentWeights {
        let width = w.shape[1]
        let key = "recurrent:\(c.planner.scopeKey):\(c.index):\(d)"
        return try w.withFloats { (wp) throws(MedInferError) in
            try r.withFloats { (rp) throws(MedInferError) in
                let biasValues = bias?.floatValues, peepholeValues = peepholes?.floatValues
                return c.planner.model.weightCache.value(key) {
                    biasValues.withOptionalPointer { bp in
                        peepholeValues.withOptionalPointer { pp in
                            RecurrentWeights(cell: cell, hidden: hidden, inputSize: inputSize,
                                             w: wp + d * width * inputSize, r: rp + d * width * hidden,
                                             bias: bp.map { $0 + d * 2 * width }, peepholes: pp.map { $0 + d * 3 * hidden })
                        }
                    }
                }
            }
        }
    }
}
