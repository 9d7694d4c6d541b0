#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Recognizes a Loop that scans a GRU cell over the time steps (how tf2onnx exports a
/// Keras GRU: the body gathers step t of the sequence, multiplies it and the carried h by
/// the kernel and recurrent kernel, and computes the gates with MatMul/Add/Split/Slice/
/// Sigmoid/Tanh/Mul/Sub), so that it runs on the fused GRU kernel instead of one body per
/// step. Recognition is structural (where x_t, h and the weights are) and then numerical:
/// the body is evaluated on random x and h and must match the fused cell built from the
/// candidate weights, so a body that merely looks like a GRU is never replaced.
enum GRULoopPattern {
    static func plan(_ c: NodeContext, body: ONNXGraph, tripCount: Int64?, carried: [PlanValue],
                     scanCount: Int) throws(MedInferError) -> [PlanValue]? {
        guard scanCount == 1, body.inputs.count == 2 + carried.count else { return nil }
        // Constants the body can see: loop-carried constants, its initializers (decoded once
        // here), outer constants.
        var constants: [String: ConstTensor] = [:]
        for (i, value) in carried.enumerated() { if let k = value.constant { constants[body.inputs[2 + i].name] = k } }
        for t in body.initializers where constants[t.name] == nil {
            constants[t.name] = try? ConstTensor(t, bytes: c.planner.model.bytes.buffer, label: "")
        }
        func constant(_ name: String) -> ConstTensor? { constants[name] ?? c.planner.values[name]?.constant }
        // The step index: the iteration number, or a carried counter from 0 adding 1 (tf2onnx's "time").
        var stepNames: Set<String> = [body.inputs[0].name]
        for (i, value) in carried.enumerated() where value.constant?.intValues == [0] {
            let name = body.inputs[2 + i].name
            if let add = body.nodes.first(where: { $0.outputs.first == body.outputs[1 + i].name }), add.opType == "Add",
               add.inputs.contains(name), add.inputs.contains(where: { $0 != name && constant($0)?.intValues == [1] }) {
                stepNames.insert(name)
            }
        }
        // x_t = Gather(X, step) with X [T, N, I] from the enclosing graph.
        guard let gather = body.nodes.first(where: { $0.opType == "Gather" && $0.inputs.count == 2 && stepNames.contains($0.inputs[1]) }),
              (try? NodeContext(node: gather, index: 0, inputs: [], planner: c.planner).int("axis", 0)) == 0,
              let sequence = c.planner.values[gather.inputs[0]], sequence.constant == nil, sequence.shape.count == 3
        else { return nil }
        let steps = sequence.shape[0], batch = sequence.shape[1], inputSize = sequence.shape[2]
        guard steps > 0, tripCount == Int64(steps) else { return nil }

        // h: the carried value that multiplies a [H, 3H] constant.
        var hIndex: Int?, recurrentKernel: ConstTensor?, kernel: ConstTensor?
        for node in body.nodes where node.opType == "MatMul" && node.inputs.count == 2 {
            guard let b = constant(node.inputs[1]), b.shape.count == 2 else { continue }
            if node.inputs[0] == gather.outputs.first {
                kernel = b
            } else if let i = body.inputs.dropFirst(2).firstIndex(where: { $0.name == node.inputs[0] }) {
                hIndex = i - 2
                recurrentKernel = b
            }
        }
        guard let hIndex, let recurrentKernel, let kernel else { return nil }
        let hidden = recurrentKernel.shape[0]
        guard hidden > 0, recurrentKernel.shape[1] == 3 * hidden, kernel.shape == [inputSize, 3 * hidden],
              carried[hIndex].shape == [batch, hidden] else { return nil }
        // The new h must be the scan output and the carried h's next value (checked numerically).
        let scanName = body.outputs[1 + carried.count].name
        // Every other carried value must pass through unchanged or be unused after the loop.
        for i in carried.indices where i != hIndex {
            let passes = body.outputs[1 + i].name == body.inputs[2 + i].name
            if !passes && i < c.node.outputs.count && c.planner.hasConsumers(c.node.outputs[i]) { return nil }
        }

        // Candidate biases: Keras reset_after keeps [2, 3H] (input, recurrent); otherwise [3H].
        var biasCandidates: [(ConstTensor?, Bool)] = [(nil, true), (nil, false)]
        var seen = Set<String>()
        for node in body.nodes {
            for name in node.inputs where !name.isEmpty && seen.insert(name).inserted {
                guard let k = constant(name), k.isFloat else { continue }
                if k.shape == [2, 3 * hidden] { biasCandidates.insert((k, true), at: 0) }
                if k.shape == [3 * hidden] || k.shape == [1, 3 * hidden] { biasCandidates.insert((k, false), at: 0) }
            }
        }
        // ONNX layouts: W [3H][I] and R [3H][H] are the transposed Keras kernels (same gate order z, r, h).
        let w = transpose(kernel.floatValues, rows: inputSize, columns: 3 * hidden)
        let r = transpose(recurrentKernel.floatValues, rows: hidden, columns: 3 * hidden)
        for (bias, linearBeforeReset) in biasCandidates {
            var onnxBias = [Float](repeating: 0, count: 6 * hidden)
            if let bias {
                let values = bias.floatValues
                for j in 0 ..< values.count { onnxBias[j] = values[j] }  // [2, 3H] is exactly Wb then Rb
            }
            let weights = RecurrentWeights(cell: .gru(linearBeforeReset: linearBeforeReset), hidden: hidden, inputSize: inputSize,
                                           w: w, r: r, bias: onnxBias, peepholes: nil)
            guard verify(c, body: body, gather: gather, carried: carried, hIndex: hIndex, scanName: scanName,
                         weights: weights) else { continue }
            let key = "gru-loop:\(c.planner.scopeKey):\(c.index):\(bias.map { "\($0.shape)" } ?? "none"):\(linearBeforeReset)"
            let cached = c.planner.model.weightCache.value(key) { weights }
            let initial = carried[hIndex]
            var initialH: RuntimeTensor?
            if !(initial.constant?.floatValues.allSatisfy { $0 == 0 } ?? false) { initialH = try c.builder.tensor(initial) }
            let layer = Operators.RecurrentLayer(
                name: "Loop (GRU cell)", directions: [cached], reversed: [false], steps: steps, batch: batch, batchMajor: false,
                clip: .infinity, x: sequence, initialH: initialH, initialC: nil, fileLengths: nil,
                yShape: [steps, batch, hidden], yHShape: [batch, hidden], yCShape: nil)
            let result = try Operators.emitRecurrentLayer(c, layer)
            var outputs = carried
            outputs[hIndex] = result.yH!
            outputs.append(result.y!)
            return Array(outputs.prefix(c.node.outputs.count))
        }
        return nil
    }

    private static func transpose(_ values: [Float], rows: Int, columns: Int) -> [Float] {
        var out = [Float](repeating: 0, count: values.count)
        for i in 0 ..< rows { for j in 0 ..< columns { out[j * rows + i] = values[i * columns + j] } }
        return out
    }

    /// Evaluates the body (folding it on constant inputs) for random x_t and h, and
    /// compares its new h with the fused cell's.
    private static func verify(_ c: NodeContext, body: ONNXGraph, gather: ONNXNode, carried: [PlanValue], hIndex: Int,
                               scanName: String, weights: RecurrentWeights) -> Bool {
        let rows = 2, hidden = weights.hidden, inputSize = weights.inputSize
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        func random() -> Float {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(Int64(bitPattern: seed >> 11) % 2001 - 1000) / 1000
        }
        let x = (0 ..< rows * inputSize).map { _ in random() * 2 }
        let h = (0 ..< rows * hidden).map { _ in random() }
        guard let planner = try? GraphPlanner(subgraph: body, of: c.planner, scopeKey: c.planner.scopeKey + "/verify") else { return false }
        planner.values[gather.inputs[0]] = .constant(ConstTensor(shape: [1, rows, inputSize], floats: x))
        var inputs: [PlanValue] = [.constant(.scalar(0)), .constant(ConstTensor(shape: [], ints: [1], type: .bool))]
        for (i, value) in carried.enumerated() {
            guard i != hIndex else { inputs.append(.constant(ConstTensor(shape: [rows, hidden], floats: h))); continue }
            guard value.constant != nil else { return false }
            inputs.append(value)
        }
        guard let outputs = try? planner.planSubgraph(inputs: inputs),
              let scan = outputs.last?.constant, scan.count == rows * hidden,
              let next = outputs[1 + hIndex].constant, next.count == rows * hidden,
              body.outputs.last?.name == scanName else { return false }
        let expected = reference(weights, x: x, h: h, rows: rows)
        let got = scan.floatValues, carriedNext = next.floatValues
        for i in 0 ..< expected.count {
            guard abs(got[i] - expected[i]) <= 1e-4, abs(carriedNext[i] - expected[i]) <= 1e-4 else { return false }
        }
        return true
    }

    /// One GRU step in plain arithmetic, from the packed weights (Wᵀ, Rᵀ and biases).
    private static func reference(_ w: RecurrentWeights, x: [Float], h: [Float], rows: Int) -> [Float] {
        let hidden = w.hidden, width = w.width, inputSize = w.inputSize
        var out = [Float](repeating: 0, count: rows * hidden)
        for b in 0 ..< rows {
            var projection = w.projectionBias, recurrent = [Float](repeating: 0, count: width)
            for j in 0 ..< width {
                for k in 0 ..< inputSize { projection[j] += x[b * inputSize + k] * w.inputWeights[k * width + j] }
                for k in 0 ..< hidden { recurrent[j] += h[b * hidden + k] * w.recurrentWeights[k * width + j] }
            }
            let reset = (0 ..< hidden).map { 1 / (1 + expf(-(projection[hidden + $0] + recurrent[hidden + $0]))) }
            for j in 0 ..< hidden {
                let z = 1 / (1 + expf(-(projection[j] + recurrent[j])))
                let r = reset[j]
                let candidate: Float
                if case .gru(true) = w.cell {
                    candidate = tanhf(projection[2 * hidden + j] + r * (recurrent[2 * hidden + j] + w.resetBias[j]))
                } else {
                    var sum: Float = 0
                    for k in 0 ..< hidden { sum += reset[k] * h[b * hidden + k] * w.recurrentWeights[k * width + 2 * hidden + j] }
                    candidate = tanhf(projection[2 * hidden + j] + sum)
                }
                out[b * hidden + j] = candidate + z * (h[b * hidden + j] - candidate)
            }
        }
        return out
    }
}
