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
        let ensemble = try handle.ensemble

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
            iterations = try checkedIterations(options.pointee.iteration_limit, ensemble, function)
        }
        let rowCount = try checkedRows(rows, featureCount, ensemble.featureCount, function)
        try checkOutputLength(outLength, rows: rowCount, ensemble.outputCount(raw: raw), in: function)
        try handle.forest.predict(features: features, rows: rowCount, iterations: iterations, raw: raw, out: out)
    }
}

/// The iteration count an options struct asks for (0: the model's default).
func checkedIterations(_ limit: UInt64, _ ensemble: TreeEnsemble, _ function: String) throws(MedInferError) -> Int {
    guard limit != 0 else { return ensemble.defaultIterationLimit }
    guard limit <= UInt64(ensemble.iterationCount) else {
        throw .invalidArgument("\(function): options->iteration_limit \(limit) exceeds the model's \(ensemble.iterationCount) iterations")
    }
    return Int(limit)
}

/// Checks that an output of rows x a x b x c doubles fits in `outLength` (a size_t: any
/// capacity at or above the result is fine, SIZE_MAX included). Plain integers rather
/// than an array: this runs on every call and must not allocate.
func checkOutputLength(_ outLength: Int, rows: Int, _ a: Int, _ b: Int = 1, _ c: Int = 1,
                       in function: String) throws(MedInferError) {
    func shape() -> String { [rows, a, b, c].filter { $0 != 1 }.map(String.init).joined(separator: " x ") }
    var needed = rows
    for dimension in [a, b, c] where dimension != 1 {
        let (product, overflow) = needed.multipliedReportingOverflow(by: dimension)
        guard !overflow else { throw .outOfMemory("\(function): an output of \(shape()) values overflows size_t") }
        needed = product
    }
    guard UInt(bitPattern: outLength) >= UInt(needed) else {
        throw .bufferTooSmall("\(function): 'out' holds \(UInt(bitPattern: outLength)) doubles, \(needed) needed (\(shape()))")
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
