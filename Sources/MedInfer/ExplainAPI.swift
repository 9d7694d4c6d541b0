import CMedInferABI
import MedInferCore

private let explainOptionsV1Size = MemoryLayout<medinfer_explain_options>.size

@_cdecl("medinfer_explain_options_init")
public func medinfer_explain_options_init(_ options: UnsafeMutablePointer<medinfer_explain_options>?) {
    options?.pointee = medinfer_explain_options(struct_size: explainOptionsV1Size, iteration_limit: 0)
}

@_cdecl("medinfer_shap_values")
public func medinfer_shap_values(_ model: OpaquePointer?, _ features: UnsafePointer<Float>?, _ rows: Int,
                                 _ featureCount: Int, _ options: UnsafePointer<medinfer_explain_options>?,
                                 _ out: UnsafeMutablePointer<Double>?, _ outLength: Int) -> Int32 {
    explain("medinfer_shap_values", model, features, rows, featureCount, options, out, outLength,
            perRow: { (m, k) in (m + 1, k, 1) }) { explainer, features, rows, iterations, out in
        explainer.shapValues(features: features, rows: rows, iterations: iterations, out: out)
    }
}

@_cdecl("medinfer_shap_interaction_values")
public func medinfer_shap_interaction_values(_ model: OpaquePointer?, _ features: UnsafePointer<Float>?,
                                             _ rows: Int, _ featureCount: Int,
                                             _ options: UnsafePointer<medinfer_explain_options>?,
                                             _ out: UnsafeMutablePointer<Double>?, _ outLength: Int) -> Int32 {
    explain("medinfer_shap_interaction_values", model, features, rows, featureCount, options, out, outLength,
            perRow: { (m, k) in (m + 1, m + 1, k) }) { explainer, features, rows, iterations, out in
        explainer.interactionValues(features: features, rows: rows, iterations: iterations, out: out)
    }
}

/// Shared validation of the SHAP entry points.
private func explain(_ function: String, _ model: OpaquePointer?, _ features: UnsafePointer<Float>?, _ rows: Int,
                     _ featureCount: Int, _ options: UnsafePointer<medinfer_explain_options>?,
                     _ out: UnsafeMutablePointer<Double>?, _ outLength: Int,
                     perRow: (_ features: Int, _ outputs: Int) -> (Int, Int, Int),
                     _ run: (TreeExplainer, UnsafePointer<Float>, Int, Int, UnsafeMutablePointer<Double>) -> Void) -> Int32 {
    cEntryPoint { () throws(MedInferError) in
        let handle = try ModelHandle.from(model, in: function)
        let features = try required(features, "features", in: function)
        let out = try required(out, "out", in: function)
        let ensemble = try handle.ensemble
        var iterations = ensemble.defaultIterationLimit
        if let options {
            guard options.pointee.struct_size >= explainOptionsV1Size else {
                throw .invalidArgument("\(function): options->struct_size is \(options.pointee.struct_size), expected at least \(explainOptionsV1Size) (use medinfer_explain_options_init)")
            }
            iterations = try checkedIterations(options.pointee.iteration_limit, ensemble, function)
        }
        let rowCount = try checkedRows(rows, featureCount, ensemble.featureCount, function)
        // The output size is checked before the explainer is built: a bad call costs nothing.
        let (a, b, c) = perRow(ensemble.featureCount, ensemble.outputCount)
        try checkOutputLength(outLength, rows: rowCount, a, b, c, in: function)
        let explainer = try handle.explainer(rows: rowCount)
        run(explainer, features, rowCount, iterations, out)
    }
}
