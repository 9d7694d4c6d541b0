import CMedInferABI
import MedInferCore

/// What a `medinfer_stream*` points to: the stream plus the model handle it came from
/// (kept alive by the stream, and compared on every push).
final class StreamHandle {
    let model: ModelHandle
    let stream: SequenceStream

    init(model: ModelHandle, stream: SequenceStream) {
        self.model = model
        self.stream = stream
    }

    static func from(_ pointer: OpaquePointer?, in function: String) throws(MedInferError) -> StreamHandle {
        let pointer = try required(pointer, "stream", in: function)
        return Unmanaged<StreamHandle>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
    }
}

/// Finds a model input by C-string name, for error messages that list the choices.
private func inputIndex(_ network: NetworkModel, named pointer: UnsafePointer<CChar>, _ function: String) throws(MedInferError) -> Int {
    let name = String(cString: pointer)
    guard let index = network.inputs.firstIndex(where: { $0.name == name }) else {
        throw .invalidArgument("\(function): the model has no input named '\(name)' (inputs: \(network.inputs.map(\.name).joined(separator: ", ")))")
    }
    return index
}

/// A `medinfer_sequence_batch` checked against a sequence model: sizes within limits,
/// pointers present, static inputs known, shaped [batch, k] and given once.
struct SequenceBatchArguments {
    var spec: medinfer_sequence_batch
    var values: UnsafePointer<Float>
    var lengths: [Int]?
    var statics: [StaticRows] = []

    init(_ batch: UnsafePointer<medinfer_sequence_batch>?, network: NetworkModel, label: String,
         in function: String) throws(MedInferError) {
        spec = try required(batch, label, in: function).pointee
        guard spec.struct_size >= MemoryLayout<medinfer_sequence_batch>.size else {
            throw .invalidArgument("\(function): \(label).struct_size \(spec.struct_size) is smaller than sizeof(medinfer_sequence_batch) (\(MemoryLayout<medinfer_sequence_batch>.size))")
        }
        guard spec.batch >= 1, spec.max_steps >= 1 else {
            throw .invalidArgument("\(function): batch (\(spec.batch)) and max_steps (\(spec.max_steps)) must both be at least 1")
        }
        guard spec.features >= 1 else {
            throw .shapeMismatch("\(function): \(label).features is 0; every step has the model's feature count of values")
        }
        // Each factor is at least 1, so a product within the cap bounds every one of them
        // (the lengths list below has `batch` entries).
        let (sequenceFloats, o1) = spec.max_steps.multipliedReportingOverflow(by: spec.features)
        let (total, o2) = sequenceFloats.multipliedReportingOverflow(by: spec.batch)
        guard !o1, !o2, total <= 1 << 30 else {
            throw .outOfMemory("\(function): \(spec.batch) x \(spec.max_steps) x \(spec.features) values are too many")
        }
        values = try required(spec.values, "\(label).values", in: function)
        if let given = spec.lengths {
            lengths = (0 ..< spec.batch).map { Int(clamping: given[$0]) }
        }
        guard spec.static_input_count <= network.inputs.count else {
            throw .invalidArgument("\(function): \(spec.static_input_count) static inputs given, the model has \(network.staticInputs.count)")
        }
        if spec.static_input_count > 0 {
            let tensors = try required(spec.static_inputs, "\(label).static_inputs", in: function)
            for i in 0 ..< spec.static_input_count {
                let tensor = tensors[i]
                let where_ = "\(function): \(label).static_inputs[\(i)]"
                let index = try tensor.name.map { (p) throws(MedInferError) in try inputIndex(network, named: p, function) }
                    ?? (i < network.staticInputs.count ? network.staticInputs[i] : -1)
                guard network.staticInputs.contains(index) else {
                    throw .invalidArgument("\(where_) is not a static input of the model (static inputs: \(network.staticInputs.map { network.inputs[$0].name }.joined(separator: ", ")))")
                }
                var shape: [Int] = []
                withUnsafeBytes(of: tensor.shape) { raw in
                    let dims = raw.bindMemory(to: Int64.self)
                    for a in 0 ..< min(tensor.rank, Int(MEDINFER_MAX_RANK)) { shape.append(Int(clamping: dims[a])) }
                }
                guard tensor.rank == 2, shape[0] == spec.batch, shape[1] >= 1, shape[1] <= 1 << 20 else {
                    throw .shapeMismatch("\(where_) '\(network.inputs[index].name)' must have shape [\(spec.batch), k], got \(shape)")
                }
                guard tensor.length == shape[0] * shape[1] else {
                    throw .invalidArgument("\(where_): length \(tensor.length) does not match shape \(shape)")
                }
                let data = try required(tensor.data, "\(label).static_inputs[\(i)].data", in: function)
                statics.append(StaticRows(input: index, values: data, width: shape[1]))
            }
        }
    }
}

@_cdecl("medinfer_sequence_batch_init")
public func medinfer_sequence_batch_init(_ batch: UnsafeMutablePointer<medinfer_sequence_batch>?) {
    guard let batch else { return }
    batch.pointee = medinfer_sequence_batch()
    batch.pointee.struct_size = MemoryLayout<medinfer_sequence_batch>.size
}

@_cdecl("medinfer_sequence_run")
public func medinfer_sequence_run(_ session: OpaquePointer?, _ batch: UnsafePointer<medinfer_sequence_batch>?,
                                  _ out: UnsafeMutablePointer<Float>?, _ length: Int,
                                  _ outCount: UnsafeMutablePointer<Int>?) -> Int32 {
    cEntryPoint { () throws(MedInferError) in
        let function = "medinfer_sequence_run"
        let handle = try SessionHandle.from(session, in: function)
        let network = handle.session.model
        let parsed = try SequenceBatchArguments(batch, network: network, label: "batch", in: function)
        let (values, spec, lengths, statics) = (parsed.values, parsed.spec, parsed.lengths, parsed.statics)
        let count = try handle.session.runSequences(values: values, batch: spec.batch, maxSteps: spec.max_steps,
                                                    features: spec.features, lengths: lengths, statics: statics,
                                                    output: nil, capacity: 0)
        outCount?.pointee = count
        guard length >= count, out != nil || count == 0 else {
            throw .bufferTooSmall("\(function): the output has \(count) values, the buffer holds \(out == nil ? 0 : length)")
        }
        _ = try handle.session.runSequences(values: values, batch: spec.batch, maxSteps: spec.max_steps,
                                            features: spec.features, lengths: lengths, statics: statics,
                                            output: out, capacity: length)
    }
}

/// sizeof(medinfer_stream_options) before explain_steps was added.
private let streamOptionsV1Size = MemoryLayout<medinfer_stream_options>.offset(of: \.explain_steps)!

@_cdecl("medinfer_stream_options_init")
public func medinfer_stream_options_init(_ options: UnsafeMutablePointer<medinfer_stream_options>?) {
    guard let options else { return }
    options.pointee = medinfer_stream_options()
    options.pointee.struct_size = MemoryLayout<medinfer_stream_options>.size
    options.pointee.mode = MEDINFER_STREAM_AUTO
    options.pointee.window = 48
}

@_cdecl("medinfer_stream_create")
public func medinfer_stream_create(_ model: OpaquePointer?, _ options: UnsafePointer<medinfer_stream_options>?,
                                   _ outStream: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    outStream?.pointee = nil
    return cEntryPoint { () throws(MedInferError) in
        let function = "medinfer_stream_create"
        let outStream = try required(outStream, "out_stream", in: function)
        let handle = try ModelHandle.from(model, in: function)
        let network = try handle.requireNetwork(function)
        var settings = medinfer_stream_options()
        medinfer_stream_options_init(&settings)
        if let options {
            // The first release's struct ended before explain_steps: its callers get the default.
            let size = options.pointee.struct_size
            guard size >= streamOptionsV1Size else {
                throw .invalidArgument("\(function): options.struct_size \(size) is smaller than the first version of medinfer_stream_options (\(streamOptionsV1Size) bytes; use medinfer_stream_options_init)")
            }
            let raw = UnsafeRawPointer(options)
            settings.mode = raw.load(fromByteOffset: MemoryLayout<medinfer_stream_options>.offset(of: \.mode)!, as: Int32.self)
            settings.reserved = raw.load(fromByteOffset: MemoryLayout<medinfer_stream_options>.offset(of: \.reserved)!, as: Int32.self)
            settings.window = raw.load(fromByteOffset: MemoryLayout<medinfer_stream_options>.offset(of: \.window)!, as: Int.self)
            if size >= MemoryLayout<medinfer_stream_options>.size { settings.explain_steps = options.pointee.explain_steps }
        }
        guard settings.reserved == 0 else { throw .invalidArgument("\(function): options.reserved must be 0") }
        _ = try checkedSize(settings.window, "options.window", 1 ... SequenceStream.maxWindow, in: function)
        _ = try checkedSize(settings.explain_steps, "options.explain_steps", 0 ... SequenceStream.maxWindow, in: function)
        let mode: SequenceStream.Mode
        switch settings.mode {
        case MEDINFER_STREAM_AUTO: mode = .automatic(window: settings.window)
        case MEDINFER_STREAM_WINDOW: mode = .window(settings.window)
        default: throw .invalidArgument("\(function): options.mode \(settings.mode) is not MEDINFER_STREAM_AUTO or MEDINFER_STREAM_WINDOW")
        }
        let stream = try SequenceStream(model: network, mode: mode, explainSteps: settings.explain_steps)
        outStream.pointee = OpaquePointer(Unmanaged.passRetained(StreamHandle(model: handle, stream: stream)).toOpaque())
    }
}

@_cdecl("medinfer_stream_free")
public func medinfer_stream_free(_ stream: OpaquePointer?) {
    guard let stream else { return }
    Unmanaged<StreamHandle>.fromOpaque(UnsafeRawPointer(stream)).release()
}

@_cdecl("medinfer_stream_set_static")
public func medinfer_stream_set_static(_ stream: OpaquePointer?, _ name: UnsafePointer<CChar>?,
                                       _ values: UnsafePointer<Float>?, _ count: Int) -> Int32 {
    cEntryPoint { () throws(MedInferError) in
        let function = "medinfer_stream_set_static"
        let handle = try StreamHandle.from(stream, in: function)
        let network = handle.stream.model
        let statics = network.staticInputs
        let index: Int
        if let name {
            index = try inputIndex(network, named: name, function)
            guard statics.contains(index) else {
                throw .invalidArgument("\(function): '\(network.inputs[index].name)' is the sequence input, not a static input")
            }
        } else {
            guard statics.count == 1 else {
                throw .invalidArgument("\(function): name is NULL but the model has \(statics.count) static inputs (\(statics.map { network.inputs[$0].name }.joined(separator: ", ")))")
            }
            index = statics[0]
        }
        guard count >= 0, count <= 1 << 20 else { throw .invalidArgument("\(function): 'count' is not a valid length") }
        let values = try required(values, "values", in: function)
        try handle.stream.setStatic(index, UnsafeBufferPointer(start: values, count: count))
    }
}

@_cdecl("medinfer_stream_push")
public func medinfer_stream_push(_ model: OpaquePointer?, _ stream: OpaquePointer?,
                                 _ sample: UnsafePointer<Float>?, _ count: Int,
                                 _ out: UnsafeMutablePointer<Float>?, _ length: Int,
                                 _ outCount: UnsafeMutablePointer<Int>?) -> Int32 {
    cEntryPoint { () throws(MedInferError) in
        let function = "medinfer_stream_push"
        let modelHandle = try ModelHandle.from(model, in: function)
        let handle = try StreamHandle.from(stream, in: function)
        guard handle.model === modelHandle else {
            throw .invalidArgument("\(function): the stream was created from another model")
        }
        guard count >= 0, count <= 1 << 20 else { throw .invalidArgument("\(function): 'count' is not a valid length") }
        let sample = try required(sample, "sample", in: function)
        let needed = handle.stream.outputCount
        outCount?.pointee = needed
        guard let out, length >= needed else {
            throw .bufferTooSmall("\(function): the model writes \(needed) values per step, the buffer holds \(out == nil ? 0 : length); the step was not consumed")
        }
        try handle.stream.push(UnsafeBufferPointer(start: sample, count: count), output: out)
    }
}

@_cdecl("medinfer_stream_steps")
public func medinfer_stream_steps(_ stream: OpaquePointer?, _ outSteps: UnsafeMutablePointer<UInt64>?) -> Int32 {
    cEntryPoint { () throws(MedInferError) in
        let handle = try StreamHandle.from(stream, in: "medinfer_stream_steps")
        try required(outSteps, "out_steps", in: "medinfer_stream_steps").pointee = handle.stream.steps
    }
}

@_cdecl("medinfer_stream_reset")
public func medinfer_stream_reset(_ stream: OpaquePointer?) -> Int32 {
    cEntryPoint { () throws(MedInferError) in
        try StreamHandle.from(stream, in: "medinfer_stream_reset").stream.reset()
    }
}
