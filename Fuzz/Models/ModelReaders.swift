// Fuzz target for every model reader: any bytes are offered as a model file; when they
// load, a tree model must also score and explain rows (NaN, +-inf, huge values), and an
// ONNX network must plan and run on small inputs, without a trap. Built two ways:
//   - with -DFUZZING and -sanitize=fuzzer,address (make fuzz): a libFuzzer binary;
//   - plainly (swift build / make test): a replay tool that runs every file or
//     directory given on the command line through the same code, so crashes that were
//     found stay fixed.
#if canImport(Glibc)
import Glibc
#endif
import MedInferCore

func exercise(_ bytes: UnsafeRawBufferPointer) {
    if let first = bytes.first, ModelLoader.looksLikeONNX(firstByte: first) {
        exerciseNetwork(bytes)
        return
    }
    guard let forest = try? ModelLoader.load(bytes: bytes, description: "fuzz input") else { return }
    let ensemble = forest.ensemble
    let features = ensemble.featureCount
    // Rows that walk the edges: missing, infinities, zeros of both signs, huge values.
    let specials: [Float] = [.nan, .infinity, -.infinity, 0, -0.0, 1, -1, 0.5, 1e30, -1e30, 3, 31.5]
    let rows = 9
    var x = [Float](repeating: 0, count: rows * features)
    for i in x.indices { x[i] = specials[(i * 7 + i / features) % specials.count] }
    let perRow = max(ensemble.outputCount(raw: false), ensemble.outputCount(raw: true))
    var out = [Double](repeating: 0, count: rows * perRow)
    forest.predict(features: x, rows: rows, iterations: ensemble.defaultIterationLimit, raw: false, out: &out)
    forest.predict(features: x, rows: rows, iterations: 1, raw: true, out: &out)
    // Explanations are bounded by the same limits; keep inputs small so a run stays fast.
    guard features <= 256, ensemble.trees.count <= 256,
          let explainer = try? TreeExplainer(ensemble) else { return }
    var values = [Double](repeating: 0, count: 2 * explainer.valuesPerRow)
    explainer.shapValues(features: x, rows: 2, iterations: ensemble.defaultIterationLimit, out: &values)
    if features <= 32 && ensemble.outputCount <= 4 {
        var interactions = [Double](repeating: 0, count: explainer.interactionValuesPerRow)
        explainer.interactionValues(features: x, rows: 1, iterations: 1, out: &interactions)
    }
}

/// Reads, plans and runs an ONNX model: open dimensions become 1, 2 or 3, inputs hold
/// edge values; plans over 4 M floats are not run (planning them is still exercised).
func exerciseNetwork(_ bytes: UnsafeRawBufferPointer) {
    let loaded: NetworkModel
    do { loaded = try NetworkModel(copying: bytes) } catch {
        if getenv("MEDINFER_FUZZ_VERBOSE") != nil { print("refused: \(error)") }
        return
    }
    guard loaded.inputs.count <= 8 else { return }
    let network = loaded
    let session = NetworkSession(model: network)
    let specials: [Float] = [.nan, .infinity, -.infinity, 0, -0.0, 1, -1, 0.5, 1e30, -1e30, 3, 255]
    for open in 1 ... 3 {
        var shapes: [[Int]] = []
        for port in network.inputs {
            shapes.append((port.dims ?? []).map { dim in
                if case .fixed(let d) = dim { return d } else { return open }
            })
        }
        guard shapes.allSatisfy({ $0.reduce(1, *) <= 1 << 16 }),
              let outputs = try? session.outputShapes(inputShapes: shapes),
              let plan = try? session.plan(for: shapes), plan.arenaFloats <= 1 << 22 else { continue }
        let inputs = shapes.map { shape in (0 ..< shape.reduce(1, *)).map { specials[$0 % specials.count] } }
        var results = outputs.map { [Float](repeating: 0, count: max(1, $0.reduce(1, *))) }
        withPointers(inputs) { inputPointers in
            withMutablePointers(&results) { outputPointers in
                let ran = (try? session.run(inputs: inputPointers, inputShapes: shapes, outputs: outputPointers)) != nil
                if getenv("MEDINFER_FUZZ_VERBOSE") != nil { print("ran \(shapes): \(ran)") }
            }
        }
    }
    exerciseSequences(network)
    exerciseRegions(network)
}

/// A network with one rank-4 input (an image) is also re-run regionally, as image
/// explanations do: after changing a box of the input, the regional output must equal a
/// whole run (finite inputs in -1...1; outputs compared where both are finite).
func exerciseRegions(_ network: NetworkModel) {
    guard network.inputs.count == 1, let dims = network.inputs[0].dims, dims.count == 4 else { return }
    let shape = dims.enumerated().map { axis, dim -> Int in
        if case .fixed(let d) = dim { return d }
        return axis == 0 ? 1 : 5
    }
    guard shape[0] == 1, shape.reduce(1, *) <= 1 << 14,
          let regional = try? RegionalExecution(model: network, shape: shape), regional.plan.arenaFloats <= 1 << 22
    else { return }
    let count = shape.reduce(1, *)
    var input = (0 ..< count).map { Float(($0 * 37) % 19) / 9 - 1 }
    regional.inputValues.update(from: input, count: count)
    regional.runAll()
    let session = NetworkSession(model: network)
    guard let outputShapes = try? session.outputShapes(inputShapes: [shape]),
          outputShapes.allSatisfy({ $0.reduce(1, *) <= 1 << 16 }) else { return }
    var regionalOut = [Float](repeating: 0, count: max(1, outputShapes[0].reduce(1, *)))
    var whole = outputShapes.map { [Float](repeating: 0, count: max(1, $0.reduce(1, *))) }
    // A corner element, an inner block, the last row of the last axis pair.
    let boxes: [[Range<Int>]] = [
        shape.map { 0 ..< min(1, $0) },
        shape.map { $0 < 3 ? 0 ..< $0 : 1 ..< $0 - 1 },
        shape.enumerated().map { axis, d in axis >= 2 ? max(0, d - 1) ..< d : 0 ..< d },
    ]
    for (step, box) in boxes.enumerated() {
        for i in 0 ..< count {
            var rest = i, inside = true
            for a in stride(from: 3, through: 0, by: -1) {
                if !box[a].contains(rest % shape[a]) { inside = false }
                rest /= shape[a]
            }
            if inside { input[i] = Float((i * 13 + step * 7) % 23) / 11 - 1; regional.inputValues[i] = input[i] }
        }
        regional.update(changed: box)
        regionalOut.withUnsafeMutableBufferPointer { regional.copyFirstOutput(to: $0.baseAddress!) }
        var ran = false, wholeFirst: [Float] = []
        let firstCount = whole[0].count
        input.withUnsafeBufferPointer { i in
            withMutablePointers(&whole) { o in
                ran = (try? session.run(inputs: [i.baseAddress!], inputShapes: [shape], outputs: o)) != nil
                if ran { wholeFirst = Array(UnsafeBufferPointer(start: o[0]!, count: firstCount)) }
            }
        }
        guard ran else { return }
        for (r, w) in zip(regionalOut, wholeFirst) where r.isFinite && w.isFinite && abs(r - w) > 1e-3 * (1 + abs(w)) {
            fatalError("regional execution differs from a whole run: \(r) vs \(w) after changing \(box) of \(shape)")
        }
    }
}

/// A sequence model is also run the two ways the sequence API adds: a batch with uneven
/// lengths (recurrences told each sequence's length) and a stream pushed one step at a
/// time (recurrences planned for one step, state in the stream).
func exerciseSequences(_ network: NetworkModel) {
    guard let sequence = network.sequenceInput, let dims = network.inputs[sequence].dims,
          case .fixed(let features)? = dims.last, features > 0, features <= 64 else { return }
    let finite: [Float] = [0, -0.0, 1, -1, 0.5, 1e30, -1e30, 3, 255, 1e-38]
    let steps = 3, batch = 2
    let values = (0 ..< batch * steps * features).map { finite[$0 % finite.count] }
    var statics: [(Int, [Float])] = []
    for index in network.staticInputs {
        guard let d = network.inputs[index].dims, d.count == 2, case .fixed(let width) = d[1], width > 0, width <= 64 else { return }
        statics.append((index, (0 ..< batch * width).map { finite[($0 + 3) % finite.count] }))
    }
    let session = NetworkSession(model: network)
    var out = [Float](repeating: 0, count: 1 << 12)
    values.withUnsafeBufferPointer { v in
        withPointers(statics.map(\.1)) { pointers in
            let rows = zip(statics, pointers).map { StaticRows(input: $0.0.0, values: $0.1, width: $0.0.1.count / batch) }
            let count = (try? session.runSequences(values: v.baseAddress!, batch: batch, maxSteps: steps, features: features,
                                                   lengths: [1, steps], statics: rows, output: nil, capacity: 0)) ?? Int.max
            if count <= out.count {
                out.withUnsafeMutableBufferPointer { o in
                    _ = try? session.runSequences(values: v.baseAddress!, batch: batch, maxSteps: steps, features: features,
                                                  lengths: [1, steps], statics: rows, output: o.baseAddress, capacity: o.count)
                }
            }
        }
    }
    guard let stream = try? SequenceStream(model: network, mode: .automatic(window: 2)), stream.outputCount <= out.count else { return }
    for (index, rows) in statics {
        rows.withUnsafeBufferPointer { try? stream.setStatic(index, UnsafeBufferPointer(rebasing: $0[0 ..< $0.count / batch])) }
    }
    for t in 0 ..< steps {
        values.withUnsafeBufferPointer { v in
            out.withUnsafeMutableBufferPointer { o in
                _ = try? stream.push(UnsafeBufferPointer(rebasing: v[t * features ..< (t + 1) * features]), output: o.baseAddress!)
            }
        }
    }
}

func withPointers(_ arrays: [[Float]], _ body: ([UnsafePointer<Float>]) -> Void) {
    var pointers: [UnsafePointer<Float>] = []
    func nest(_ i: Int) {
        if i == arrays.count { body(pointers); return }
        arrays[i].withUnsafeBufferPointer { pointers.append($0.baseAddress!); nest(i + 1) }
    }
    nest(0)
}

func withMutablePointers(_ arrays: inout [[Float]], _ body: ([UnsafeMutablePointer<Float>?]) -> Void) {
    let pointers = arrays.indices.map { i in UnsafeMutablePointer<Float>.allocate(capacity: arrays[i].count) }
    defer { pointers.forEach { $0.deallocate() } }
    body(pointers)
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    exercise(UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size))
    return 0
}
#else
@main
struct ReplayRegressions {
    static func main() {
        let arguments = CommandLine.arguments.dropFirst()
        if arguments.first == "--peak-memory" {
            measurePeakMemory(arguments.dropFirst(), capMiB: 64)
        } else {
            replay(arguments)
        }
    }
}
#endif
