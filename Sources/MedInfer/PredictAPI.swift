import CMedInferABI
import MedInferCore

/// The part of `medinfer_predict_options` every version has; callers built against
/// later headers pass a larger struct_size and we read only what we know.
private let predictOptionsV1Size = MemoryLayout<medinfer_predict_options>.size

@_cdecl("medinfer_predict_options_init")
public func medinfer_predict_options_init(_ options: UnsafeMutablePointer<medinfer_predict_options>?) {
    guard let options else { return }
    options.pointee = medinfer_predict_options(
        struct_size: predictOptionsV1Size, output: MEDINFER_OUTPUT_TRANSFORMED, reserved: 0, iteration_limit: 0)
}

@_cdecl("medinfer_predict")
public func medinfer_predict(_ model: OpaquePointer?, _ features: UnsafePointer<Float>?, _ rows: Int,
                             _ featureCount: Int, _ options: UnsafePointer<medinfer_predict_options>?,
                             _ out: UnsafeMutablePointer<Double>?, _ outLength: Int) -> Int32 {
    cEntryPoint { () throws(MedInferError) in
        let function = "medinfer_predict"
        let handle = try ModelHandle.from(model, in: function)
        let features = try required(features, "features", in: function)
        let out = try required(out, "out", in: function)
        let ensemble = handle.ensemble

        var raw = false
        var iterations = ensemble.defaultIterationLimit
        if let options {
            guard options.pointee.struct_size >= predictOptionsV1Size else {
                throw .invalidArgument("\(function): options->struct_size is \(options.pointee.struct_size), expected at least \(predictOptionsV1Size) (use medinfer_predict_options_init)")
            }
            raw = try isRawOutput(options.pointee.output, in: function)
            guard options.pointee.reserved == 0 else {
                throw .invalidArgument("\(function): options->reserved must be 0, got \(options.pointee.reserved)")
            }
            let limit = options.pointee.iteration_limit
            if limit != 0 {
                guard limit <= UInt64(ensemble.iterationCount) else {
                    throw .invalidArgument("\(function): options->iteration_limit \(limit) exceeds the model's \(ensemble.iterationCount) iterations")
                }
                iterations = Int(limit)
            }
        }
        let rowCount = try checkedRows(rows, featureCount, ensemble.featureCount, function)
        let perRow = ensemble.outputCount(raw: raw)
        let (needed, overflow) = rowCount.multipliedReportingOverflow(by: perRow)
        guard !overflow else {
            throw .outOfMemory("\(function): \(rowCount) rows x \(perRow) outputs overflow size_t")
        }
        // out_length is a size_t: any capacity at or above the result is fine.
        guard UInt(bitPattern: outLength) >= UInt(needed) else {
            throw .bufferTooSmall("\(function): 'out' holds \(UInt(bitPattern: outLength)) doubles, \(needed) needed (\(rowCount) rows x \(perRow) outputs)")
        }
        handle.forest.predict(features: features, rows: rowCount, iterations: iterations, raw: raw, out: out)
    }
}

/// Validates a (rows, feature_count) pair against the model; returns the row count.
func checkedRows(_ rows: Int, _ featureCount: Int, _ modelFeatures: Int, _ function: String)
    throws(MedInferError) -> Int
{
    guard rows != 0 else { throw .invalidArgument("\(function): 'rows' is 0; pass at least one row") }
    guard rows > 0 else {
        throw .outOfMemory("\(function): 'rows' \(UInt(bitPattern: rows)) is beyond any addressable matrix")
    }
    guard featureCount == modelFeatures else {
        throw .shapeMismatch("\(function): 'feature_count' is \(UInt(bitPattern: featureCount)), the model has \(modelFeatures) features")
    }
    let (_, overflow) = rows.multipliedReportingOverflow(by: max(featureCount, 1) * MemoryLayout<Float>.stride)
    guard !overflow else {
        throw .outOfMemory("\(function): \(rows) rows x \(featureCount) features overflow the address space")
    }
    return rows
}

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
            perRow: { (m, k) in [m + 1, k] }) { explainer, features, rows, iterations, out in
        explainer.shapValues(features: features, rows: rows, iterations: iterations, out: out)
    }
}

@_cdecl("medinfer_shap_interaction_values")
public func medinfer_shap_interaction_values(_ model: OpaquePointer?, _ features: UnsafePointer<Float>?,
                                             _ rows: Int, _ featureCount: Int,
                                             _ options: UnsafePointer<medinfer_explain_options>?,
                                             _ out: UnsafeMutablePointer<Double>?, _ outLength: Int) -> Int32 {
    explain("medinfer_shap_interaction_values", model, features, rows, featureCount, options, out, outLength,
            perRow: { (m, k) in [m + 1, m + 1, k] }) { explainer, features, rows, iterations, out in
        explainer.interactionValues(features: features, rows: rows, iterations: iterations, out: out)
    }
}

/// Shared validation of the SHAP entry points.
private func explain(_ function: String, _ model: OpaquePointer?, _ features: UnsafePointer<Float>?, _ rows: Int,
                     _ featureCount: Int, _ options: UnsafePointer<medinfer_explain_options>?,
                     _ out: UnsafeMutablePointer<Double>?, _ outLength: Int,
                     perRow: (_ features: Int, _ outputs: Int) -> [Int],
                     _ run: (TreeExplainer, UnsafePointer<Float>, Int, Int, UnsafeMutablePointer<Double>) -> Void) -> Int32 {
    cEntryPoint { () throws(MedInferError) in
        let handle = try ModelHandle.from(model, in: function)
        let features = try required(features, "features", in: function)
        let out = try required(out, "out", in: function)
        let ensemble = handle.ensemble
        var iterations = ensemble.defaultIterationLimit
        if let options {
            guard options.pointee.struct_size >= explainOptionsV1Size else {
                throw .invalidArgument("\(function): options->struct_size is \(options.pointee.struct_size), expected at least \(explainOptionsV1Size) (use medinfer_explain_options_init)")
            }
            let limit = options.pointee.iteration_limit
            if limit != 0 {
                guard limit <= UInt64(ensemble.iterationCount) else {
                    throw .invalidArgument("\(function): options->iteration_limit \(limit) exceeds the model's \(ensemble.iterationCount) iterations")
                }
                iterations = Int(limit)
            }
        }
        let rowCount = try checkedRows(rows, featureCount, ensemble.featureCount, function)
        // The output size is checked before the explainer is built: a bad call costs nothing.
        let dimensions = [rowCount] + perRow(ensemble.featureCount, ensemble.outputCount)
        var needed = 1
        for dimension in dimensions {
            let (product, overflow) = needed.multipliedReportingOverflow(by: dimension)
            guard !overflow else {
                throw .outOfMemory("\(function): an output of \(dimensions.map(String.init).joined(separator: " x ")) values overflows size_t")
            }
            needed = product
        }
        // out_length is a size_t: any capacity at or above the result is fine.
        guard UInt(bitPattern: outLength) >= UInt(needed) else {
            throw .bufferTooSmall("\(function): 'out' holds \(UInt(bitPattern: outLength)) doubles, \(needed) needed (\(dimensions.map(String.init).joined(separator: " x ")))")
        }
        let explainer = try handle.explainer()
        run(explainer, features, rowCount, iterations, out)
    }
}
