import CMedInferABI
import MedInferCore

@_cdecl("medinfer_shapley_options_init")
public func medinfer_shapley_options_init(_ options: UnsafeMutablePointer<medinfer_shapley_options>?) {
    guard let options else { return }
    options.pointee = medinfer_shapley_options()
    options.pointee.struct_size = MemoryLayout<medinfer_shapley_options>.size
    options.pointee.method = MEDINFER_SHAPLEY_AUTO
    options.pointee.budget = 1000
    options.pointee.time_windows = 1
}

@_cdecl("medinfer_image_explain_options_init")
public func medinfer_image_explain_options_init(_ options: UnsafeMutablePointer<medinfer_image_explain_options>?) {
    guard let options else { return }
    options.pointee = medinfer_image_explain_options()
    options.pointee.struct_size = MemoryLayout<medinfer_image_explain_options>.size
    options.pointee.grid_rows = 8
    options.pointee.grid_cols = 8
    options.pointee.masker = MEDINFER_MASK_MEAN
    options.pointee.method = MEDINFER_SHAPLEY_AUTO
    options.pointee.budget = 1000
}

/// The options of a sequence or stream explanation, checked.
private struct SequenceExplainSettings {
    var method: Int32 = MEDINFER_SHAPLEY_AUTO
    var budget = 1000
    var seed: UInt64 = 0
    var windows = 1
    var windowSteps = 0

    init(_ options: UnsafePointer<medinfer_shapley_options>?, in function: String) throws(MedInferError) {
        guard let options else { return }
        let o = options.pointee
        guard o.struct_size >= MemoryLayout<medinfer_shapley_options>.size else {
            throw .invalidArgument("\(function): options.struct_size \(o.struct_size) is smaller than sizeof(medinfer_shapley_options) (\(MemoryLayout<medinfer_shapley_options>.size); use medinfer_shapley_options_init)")
        }
        guard o.reserved == 0 else { throw .invalidArgument("\(function): options.reserved must be 0") }
        method = o.method; seed = o.seed
        budget = try checkedBudget(o.budget, in: function)
        windows = try checkedSize(o.time_windows, "options.time_windows", 1 ... 4096, in: function)
        windowSteps = try checkedSize(o.window_steps, "options.window_steps", 0 ... 1 << 20, in: function)
    }

    func resolved(players: Int, in function: String) throws(MedInferError) -> ShapleyMethod {
        try shapleyMethod(method, players: players, budget: budget, seed: seed, in: function)
    }
}

/// A budget of SIZE_MAX reads as a negative Int: refuse it by the limit it exceeds
/// (smaller budgets beyond it are rounded down to whole permutations, then cost-checked).
private func checkedBudget(_ budget: Int, in function: String) throws(MedInferError) -> Int {
    guard budget >= 0 else {
        throw .invalidArgument("\(function): options.budget \(UInt(bitPattern: budget)) is beyond the limit of \(ShapleyMethod.maxEvaluations) evaluations (MEDINFER_SHAPLEY_MAX_EVALUATIONS)")
    }
    return budget
}

private func shapleyMethod(_ code: Int32, players: Int, budget: Int, seed: UInt64, in function: String) throws(MedInferError) -> ShapleyMethod {
    switch code {
    case MEDINFER_SHAPLEY_AUTO: return .automatic(players: players, budget: budget, seed: seed)
    case MEDINFER_SHAPLEY_EXACT: return .exact
    case MEDINFER_SHAPLEY_PERMUTATION: return .permutation(budget: budget, seed: seed)
    default:
        throw .invalidArgument("\(function): options.method \(code) is not MEDINFER_SHAPLEY_AUTO, _EXACT or _PERMUTATION")
    }
}

/// Reports (players, K) and checks the result buffer before any model evaluation.
private func checkResultBuffer(players: Int, outputs: Int, _ values: UnsafeMutablePointer<Double>?, _ length: Int,
                               _ outPlayers: UnsafeMutablePointer<Int>?, _ outOutputs: UnsafeMutablePointer<Int>?,
                               in function: String) throws(MedInferError) -> UnsafeMutablePointer<Double> {
    outPlayers?.pointee = players
    outOutputs?.pointee = outputs
    let needed = (players + 1) * outputs
    guard let values, length >= needed else {
        throw .bufferTooSmall("\(function): the explanation has (\(players) players + 1) x \(outputs) outputs = \(needed) values, the buffer holds \(values == nil ? 0 : length)")
    }
    return values
}

@_cdecl("medinfer_explain_sequence")
public func medinfer_explain_sequence(_ session: OpaquePointer?, _ sequence: UnsafePointer<medinfer_sequence_batch>?,
                                      _ background: UnsafePointer<medinfer_sequence_batch>?,
                                      _ options: UnsafePointer<medinfer_shapley_options>?,
                                      _ values: UnsafeMutablePointer<Double>?, _ length: Int,
                                      _ outPlayers: UnsafeMutablePointer<Int>?, _ outOutputs: UnsafeMutablePointer<Int>?) -> Int32 {
    cEntryPoint { () throws(MedInferError) in
        let function = "medinfer_explain_sequence"
        let handle = try SessionHandle.from(session, in: function)
        let network = handle.session.model
        let sequenceInput = try network.requireSequenceInputForAPI(function)
        let settings = try SequenceExplainSettings(options, in: function)
        let x = try SequenceBatchArguments(sequence, network: network, label: "sequence", in: function)
        let reference = try SequenceBatchArguments(background, network: network, label: "background", in: function)
        guard x.spec.batch == 1 else {
            throw .invalidArgument("\(function): sequence.batch is \(x.spec.batch); an explanation takes one sequence")
        }
        guard reference.lengths == nil else {
            throw .invalidArgument("\(function): background.lengths must be NULL (background rows are as long as the sequence, or one step)")
        }
        guard case .fixed(let features)? = network.inputs[sequenceInput].dims?[2] else {
            throw .unsupported("\(function): the sequence input '\(network.inputs[sequenceInput].name)' does not fix its feature count")
        }
        guard x.spec.features == features else {
            throw .shapeMismatch("\(function): sequence.features is \(x.spec.features); the model takes \(features)")
        }
        guard reference.spec.features == features else {
            throw .shapeMismatch("\(function): background.features is \(reference.spec.features); the model takes \(features)")
        }
        let steps = x.lengths?[0] ?? x.spec.max_steps
        guard steps >= 1, steps <= x.spec.max_steps else {
            throw .invalidArgument("\(function): sequence length \(steps) is outside 1...\(x.spec.max_steps)")
        }
        guard reference.spec.max_steps == steps || reference.spec.max_steps == 1 else {
            throw .shapeMismatch("\(function): background.max_steps is \(reference.spec.max_steps); it must equal the sequence's length (\(steps)) or be 1")
        }
        var statics: [Int: [Float]] = [:], referenceStatics: [Int: [Float]] = [:]
        var widths: [(input: Int, width: Int)] = []
        for index in network.staticInputs {
            guard let row = x.statics.first(where: { $0.input == index }) else {
                throw .invalidArgument("\(function): sequence.static_inputs lacks '\(network.inputs[index].name)'")
            }
            guard let rows = reference.statics.first(where: { $0.input == index }) else {
                throw .invalidArgument("\(function): background.static_inputs lacks '\(network.inputs[index].name)'")
            }
            guard rows.width == row.width else {
                throw .shapeMismatch("\(function): background static input '\(network.inputs[index].name)' has rows of \(rows.width), the sequence's has \(row.width)")
            }
            statics[index] = Array(UnsafeBufferPointer(start: row.values, count: row.width))
            referenceStatics[index] = Array(UnsafeBufferPointer(start: rows.values, count: rows.width * reference.spec.batch))
            widths.append((index, row.width))
        }
        let players = try SequencePlayers(statics: widths, features: features, steps: steps,
                                          windowCount: settings.windows, windowSteps: settings.windowSteps)
        let method = try settings.resolved(players: players.count, in: function)
        _ = try method.checkedCost(players: players.count, rows: reference.spec.batch)
        // The output size is known from a batch-1 plan; check the buffer before any work.
        let outputs = try handle.session.outputShapes(inputShapes: network.inputs.indices.map { i in
            i == sequenceInput ? [1, steps, features] : [1, statics[i]!.count]
        })[0].reduce(1, *)
        let out = try checkResultBuffer(players: players.count, outputs: outputs, values, length, outPlayers, outOutputs, in: function)
        let game = try SequenceGame(
            session: handle.session, players: players,
            sequence: UnsafeBufferPointer(start: x.values, count: steps * features), steps: steps, statics: statics,
            background: UnsafeBufferPointer(start: reference.values, count: reference.spec.batch * reference.spec.max_steps * features),
            backgroundRows: reference.spec.batch, backgroundSteps: reference.spec.max_steps,
            backgroundStatics: referenceStatics)
        try game.shapleyValues(method).write(to: out)
    }
}

@_cdecl("medinfer_stream_explain")
public func medinfer_stream_explain(_ model: OpaquePointer?, _ stream: OpaquePointer?,
                                    _ reference: UnsafePointer<Float>?, _ count: Int,
                                    _ options: UnsafePointer<medinfer_shapley_options>?,
                                    _ values: UnsafeMutablePointer<Double>?, _ length: Int,
                                    _ outPlayers: UnsafeMutablePointer<Int>?, _ outOutputs: UnsafeMutablePointer<Int>?) -> Int32 {
    cEntryPoint { () throws(MedInferError) in
        let function = "medinfer_stream_explain"
        let modelHandle = try ModelHandle.from(model, in: function)
        let handle = try StreamHandle.from(stream, in: function)
        guard handle.model === modelHandle else {
            throw .invalidArgument("\(function): the stream was created from another model")
        }
        let settings = try SequenceExplainSettings(options, in: function)
        guard count >= 0, count <= 1 << 20 else { throw .invalidArgument("\(function): 'count' is not a valid length") }
        let reference = try required(reference, "reference", in: function)
        let stream = handle.stream
        let players: SequencePlayers
        do throws(MedInferError) {
            players = try stream.explanationPlayers(windowCount: settings.windows, windowSteps: settings.windowSteps)
        } catch { throw error.prefixed(function) }
        let method = try settings.resolved(players: players.count, in: function)
        _ = try method.checkedCost(players: players.count, rows: 1)
        let out = try checkResultBuffer(players: players.count, outputs: stream.outputCount, values, length, outPlayers, outOutputs, in: function)
        try stream.explain(reference: UnsafeBufferPointer(start: reference, count: count), players: players,
                           method: method).write(to: out)
    }
}

@_cdecl("medinfer_explain_image")
public func medinfer_explain_image(_ session: OpaquePointer?, _ image: UnsafePointer<medinfer_image>?,
                                   _ options: UnsafePointer<medinfer_image_explain_options>?,
                                   _ segmentValues: UnsafeMutablePointer<Double>?, _ segmentLength: Int,
                                   _ pixelValues: UnsafeMutablePointer<Float>?, _ pixelLength: Int,
                                   _ outSegments: UnsafeMutablePointer<Int>?, _ outOutputs: UnsafeMutablePointer<Int>?) -> Int32 {
    cEntryPoint { () throws(MedInferError) in
        let function = "medinfer_explain_image"
        let handle = try SessionHandle.from(session, in: function)
        let image = try CheckedImage(image, handle: handle, in: function)
        var o = medinfer_image_explain_options()
        medinfer_image_explain_options_init(&o)
        if let options {
            guard options.pointee.struct_size >= MemoryLayout<medinfer_image_explain_options>.size else {
                throw .invalidArgument("\(function): options.struct_size \(options.pointee.struct_size) is smaller than sizeof(medinfer_image_explain_options) (\(MemoryLayout<medinfer_image_explain_options>.size); use medinfer_image_explain_options_init)")
            }
            o = options.pointee
        }
        let segments: ImageSegments
        if let labels = o.segments {
            let count = try checkedSize(o.segment_count, "options.segment_count", 1 ... ImageSegments.maxSegments, in: function)
            segments = try ImageSegments.given(UnsafeBufferPointer(start: labels, count: image.width * image.height),
                                               count: count, width: image.width, height: image.height)
        } else {
            segments = try ImageSegments.grid(rows: checkedSize(o.grid_rows, "options.grid_rows", 1 ... 1 << 16, in: function),
                                              cols: checkedSize(o.grid_cols, "options.grid_cols", 1 ... 1 << 16, in: function), width: image.width, height: image.height)
        }
        let shape = image.shape
        let (modelHeight, modelWidth) = image.input.layout == .nhwc ? (shape[1], shape[2]) : (shape[2], shape[3])
        let masker: ImageGame.Masker
        switch o.masker {
        case MEDINFER_MASK_MEAN: masker = .mean
        case MEDINFER_MASK_BLUR:
            let radius = try checkedSize(o.blur_radius, "options.blur_radius", 0 ... 1 << 16, in: function)
            masker = .blur(radius: radius > 0 ? radius : max(1, max(modelHeight, modelWidth) / 16))
        default: throw .invalidArgument("\(function): options.masker \(o.masker) is not MEDINFER_MASK_MEAN or MEDINFER_MASK_BLUR")
        }
        let method = try shapleyMethod(o.method, players: segments.count, budget: checkedBudget(o.budget, in: function),
                                       seed: o.seed, in: function)
        _ = try method.checkedCost(players: segments.count, rows: 1)
        let outputs = try handle.session.outputShapes(inputShapes: [shape])[0].reduce(1, *)
        let out = try checkResultBuffer(players: segments.count, outputs: outputs, segmentValues, segmentLength,
                                        outSegments, outOutputs, in: function)
        let pixelCount = image.width * image.height * outputs
        guard pixelValues == nil || pixelLength >= pixelCount else {
            throw .bufferTooSmall("\(function): pixel_values needs \(image.width) x \(image.height) x \(outputs) = \(pixelCount) floats, the buffer holds \(pixelLength)")
        }
        let tensor = [Float](unsafeUninitializedCapacity: shape.reduce(1, *)) { buffer, initialized in
            image.fill(buffer.baseAddress!)
            initialized = buffer.count
        }
        let game = try tensor.withUnsafeBufferPointer { (t) throws(MedInferError) in
            try ImageGame(session: handle.session, input: image.input, tensor: t, shape: shape, segments: segments, masker: masker)
        }
        let result = try game.shapleyValues(method)
        result.write(to: out)
        if let pixelValues {
            for (p, label) in segments.labels.enumerated() {
                for k in 0 ..< outputs { pixelValues[p * outputs + k] = Float(result.values[Int(label) * outputs + k]) }
            }
        }
    }
}

extension NetworkModel {
    fileprivate func requireSequenceInputForAPI(_ function: String) throws(MedInferError) -> Int {
        guard let sequence = sequenceInput else {
            throw .unsupported("\(function): not a sequence model: it needs exactly one input of shape [batch, time, features] (has \(inputs.map { "'\($0.name)'" }.joined(separator: ", ")))")
        }
        return sequence
    }
}
