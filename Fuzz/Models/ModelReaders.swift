// Fuzz target for every model reader: any bytes are offered as a model file; when they
// load, the model must also score and explain rows (NaN, +-inf, huge values) without a
// trap. Built two ways:
//   - with -DFUZZING and -sanitize=fuzzer,address (make fuzz): a libFuzzer binary;
//   - plainly (swift build / make test): a replay tool that runs every file or
//     directory given on the command line through the same code, so crashes that were
//     found stay fixed.
import MedInferCore

func exercise(_ bytes: UnsafeRawBufferPointer) {
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

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    exercise(UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size))
    return 0
}
#else
@main
struct ReplayRegressions {
    static func main() { replay(CommandLine.arguments.dropFirst()) }
}
#endif
