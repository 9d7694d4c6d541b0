import CMedInferABI
import MedInferCore

@_cdecl("medinfer_model_load")
public func medinfer_model_load(_ path: UnsafePointer<CChar>?,
                                _ outModel: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    outModel?.pointee = nil
    return cEntryPoint { () throws(MedInferError) in
        let function = "medinfer_model_load"
        let path = try required(path, "path", in: function)
        let outModel = try required(outModel, "out_model", in: function)
        let file = String(cString: path)
        if let first = ModelLoader.firstByte(path: file), ModelLoader.looksLikeONNX(firstByte: first) {
            outModel.pointee = ModelHandle(try NetworkModel(path: file)).retainedPointer()
            return
        }
        let forest = try ModelLoader.load(path: file)
        outModel.pointee = ModelHandle(forest).retainedPointer()
    }
}

@_cdecl("medinfer_model_load_from_memory")
public func medinfer_model_load_from_memory(_ data: UnsafeRawPointer?, _ size: Int,
                                            _ outModel: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    outModel?.pointee = nil
    return cEntryPoint { () throws(MedInferError) in
        let function = "medinfer_model_load_from_memory"
        let outModel = try required(outModel, "out_model", in: function)
        guard size != 0 else { throw .invalidArgument("\(function): 'size' is 0 (an empty model)") }
        let data = try required(data, "data", in: function)
        guard size > 0 else { throw .invalidArgument("\(function): 'size' \(UInt(bitPattern: size)) is not a valid length") }
        let buffer = UnsafeRawBufferPointer(start: data, count: size)
        if ModelLoader.looksLikeONNX(firstByte: buffer[0]) {
            let network: NetworkModel
            do throws(MedInferError) { network = try NetworkModel(copying: buffer) } catch { throw error.prefixed("model buffer") }
            outModel.pointee = ModelHandle(network).retainedPointer()
            return
        }
        let forest = try ModelLoader.load(bytes: buffer,
                                          description: "model buffer")
        outModel.pointee = ModelHandle(forest).retainedPointer()
    }
}

@_cdecl("medinfer_model_save")
public func medinfer_model_save(_ model: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> Int32 {
    cEntryPoint { () throws(MedInferError) in
        let function = "medinfer_model_save"
        let handle = try ModelHandle.from(model, in: function)
        let path = try required(path, "path", in: function)
        try TreeSnapshot.write(try handle.ensemble, to: String(cString: path))
    }
}

@_cdecl("medinfer_model_free")
public func medinfer_model_free(_ model: OpaquePointer?) {
    guard let model else { return }
    Unmanaged<ModelHandle>.fromOpaque(UnsafeRawPointer(model)).release()
}

/// Shared shape of the query functions: resolve the handle, check the out pointer,
/// write the answer.
@inline(__always)
private func query<T>(_ function: String, _ model: OpaquePointer?, _ out: UnsafeMutablePointer<T>?,
                      _ answer: (ModelHandle) throws(MedInferError) -> T) -> Int32 {
    cEntryPoint { () throws(MedInferError) in
        let handle = try ModelHandle.from(model, in: function)
        let out = try required(out, "out", in: function)
        out.pointee = try answer(handle)
    }
}

@_cdecl("medinfer_model_kind")
public func medinfer_model_kind(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    query("medinfer_model_kind", model, out) { (handle) throws(MedInferError) in
        handle.network != nil ? MEDINFER_MODEL_ONNX : try handle.ensemble.format.rawValue
    }
}

@_cdecl("medinfer_model_feature_count")
public func medinfer_model_feature_count(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<Int>?) -> Int32 {
    query("medinfer_model_feature_count", model, out) { (handle) throws(MedInferError) in try handle.ensemble.featureCount }
}

@_cdecl("medinfer_model_feature_name")
public func medinfer_model_feature_name(_ model: OpaquePointer?, _ index: Int,
                                        _ out: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> Int32 {
    query("medinfer_model_feature_name", model, out) { (handle) throws(MedInferError) in
        let count = try handle.ensemble.featureCount
        guard index >= 0, index < count else {
            throw .invalidArgument("medinfer_model_feature_name: index \(UInt(bitPattern: index)) is outside 0..<\(count)")
        }
        return handle.featureNames.isEmpty ? nil : UnsafePointer(handle.featureNames[index])
    }
}

@_cdecl("medinfer_model_class_count")
public func medinfer_model_class_count(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<Int>?) -> Int32 {
    query("medinfer_model_class_count", model, out) { (handle) throws(MedInferError) in
        handle.network != nil ? handle.labels.count : try handle.ensemble.classCount
    }
}

@_cdecl("medinfer_model_class_label")
public func medinfer_model_class_label(_ model: OpaquePointer?, _ index: Int,
                                       _ out: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> Int32 {
    query("medinfer_model_class_label", model, out) { (handle) throws(MedInferError) in
        guard index >= 0, index < handle.labels.count else {
            throw .invalidArgument("medinfer_model_class_label: index \(UInt(bitPattern: index)) is outside 0..<\(handle.labels.count)")
        }
        return UnsafePointer(handle.labels[index])
    }
}

@_cdecl("medinfer_model_objective")
public func medinfer_model_objective(_ model: OpaquePointer?,
                                     _ out: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> Int32 {
    query("medinfer_model_objective", model, out) { UnsafePointer($0.objective) }
}

@_cdecl("medinfer_model_tree_count")
public func medinfer_model_tree_count(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<Int>?) -> Int32 {
    query("medinfer_model_tree_count", model, out) { (handle) throws(MedInferError) in try handle.ensemble.trees.count }
}

@_cdecl("medinfer_model_iteration_count")
public func medinfer_model_iteration_count(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<Int>?) -> Int32 {
    query("medinfer_model_iteration_count", model, out) { (handle) throws(MedInferError) in try handle.ensemble.iterationCount }
}

@_cdecl("medinfer_model_default_iteration_limit")
public func medinfer_model_default_iteration_limit(_ model: OpaquePointer?,
                                                   _ out: UnsafeMutablePointer<Int>?) -> Int32 {
    query("medinfer_model_default_iteration_limit", model, out) { (handle) throws(MedInferError) in try handle.ensemble.defaultIterationLimit }
}

@_cdecl("medinfer_model_output_count")
public func medinfer_model_output_count(_ model: OpaquePointer?, _ output: Int32,
                                        _ out: UnsafeMutablePointer<Int>?) -> Int32 {
    query("medinfer_model_output_count", model, out) { (handle) throws(MedInferError) in
        try handle.ensemble.outputCount(raw: isRawOutput(output, in: "medinfer_model_output_count"))
    }
}

/// Maps a MEDINFER_OUTPUT_* value to "raw?", rejecting anything else.
func isRawOutput(_ output: Int32, in function: String) throws(MedInferError) -> Bool {
    switch output {
    case MEDINFER_OUTPUT_TRANSFORMED: return false
    case MEDINFER_OUTPUT_RAW: return true
    default:
        throw .invalidArgument("\(function): output kind \(output) is neither MEDINFER_OUTPUT_TRANSFORMED (0) nor MEDINFER_OUTPUT_RAW (1)")
    }
}
