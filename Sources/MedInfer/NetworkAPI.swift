#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CMedInferABI
import MedInferCore

/// What a `medinfer_session*` points to: the session plus a reference to its model.
final class SessionHandle {
    let model: ModelHandle
    let session: NetworkSession
    /// Image conventions, read from the model on the first image call.
    var image: Result<ImageInput, MedInferError>?
    var imageBuffer: [Float] = []

    init(model: ModelHandle, network: NetworkModel) {
        self.model = model
        session = NetworkSession(model: network)
    }

    static func from(_ pointer: OpaquePointer?, in function: String) throws(MedInferError) -> SessionHandle {
        let pointer = try required(pointer, "session", in: function)
        return Unmanaged<SessionHandle>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
    }
}

/// Shared body of the two count queries.
private func portCount(_ function: String, _ model: OpaquePointer?, _ out: UnsafeMutablePointer<Int>?,
                       input: Bool) -> Int32 {
    cEntryPoint { () throws(MedInferError) in
        let network = try ModelHandle.from(model, in: function).requireNetwork(function)
        try required(out, "out_count", in: function).pointee = input ? network.inputs.count : network.outputs.count
    }
}

@_cdecl("medinfer_network_input_count")
public func medinfer_network_input_count(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<Int>?) -> Int32 {
    portCount("medinfer_network_input_count", model, out, input: true)
}

@_cdecl("medinfer_network_output_count")
public func medinfer_network_output_count(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<Int>?) -> Int32 {
    portCount("medinfer_network_output_count", model, out, input: false)
}

private func describePort(_ function: String, _ model: OpaquePointer?, _ index: Int, input: Bool,
                          _ outName: UnsafeMutablePointer<UnsafePointer<CChar>?>?,
                          _ dims: UnsafeMutablePointer<Int64>?, _ capacity: Int,
                          _ outRank: UnsafeMutablePointer<Int>?) -> Int32 {
    cEntryPoint { () throws(MedInferError) in
        let handle = try ModelHandle.from(model, in: function)
        let network = try handle.requireNetwork(function)
        let ports = input ? network.inputs : network.outputs
        guard index >= 0, index < ports.count else {
            throw .invalidArgument("\(function): index \(UInt(bitPattern: index)) is outside 0..<\(ports.count)")
        }
        let declared = ports[index].dims ?? []
        if let dims {
            guard capacity >= 0 else { throw .invalidArgument("\(function): 'capacity' is not a valid length") }
            for (i, d) in declared.prefix(capacity).enumerated() {
                if case .fixed(let v) = d { dims[i] = Int64(v) } else { dims[i] = -1 }
            }
        } else if capacity != 0 {
            throw .invalidArgument("\(function): 'dims' is NULL but capacity is \(capacity)")
        }
        outName?.pointee = UnsafePointer((input ? handle.inputNames : handle.outputNames)[index])
        outRank?.pointee = declared.count
    }
}

@_cdecl("medinfer_network_input")
public func medinfer_network_input(_ model: OpaquePointer?, _ index: Int,
                                   _ outName: UnsafeMutablePointer<UnsafePointer<CChar>?>?,
                                   _ dims: UnsafeMutablePointer<Int64>?, _ capacity: Int,
                                   _ outRank: UnsafeMutablePointer<Int>?) -> Int32 {
    describePort("medinfer_network_input", model, index, input: true, outName, dims, capacity, outRank)
}

@_cdecl("medinfer_network_output")
public func medinfer_network_output(_ model: OpaquePointer?, _ index: Int,
                                    _ outName: UnsafeMutablePointer<UnsafePointer<CChar>?>?,
                                    _ dims: UnsafeMutablePointer<Int64>?, _ capacity: Int,
                                    _ outRank: UnsafeMutablePointer<Int>?) -> Int32 {
    describePort("medinfer_network_output", model, index, input: false, outName, dims, capacity, outRank)
}

@_cdecl("medinfer_session_create")
public func medinfer_session_create(_ model: OpaquePointer?, _ outSession: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    outSession?.pointee = nil
    return cEntryPoint { () throws(MedInferError) in
        let function = "medinfer_session_create"
        let outSession = try required(outSession, "out_session", in: function)
        let handle = try ModelHandle.from(model, in: function)
        let network = try handle.requireNetwork(function)
        let session = SessionHandle(model: handle, network: network)
        outSession.pointee = OpaquePointer(Unmanaged.passRetained(session).toOpaque())
    }
}

@_cdecl("medinfer_session_free")
public func medinfer_session_free(_ session: OpaquePointer?) {
    guard let session else { return }
    Unmanaged<SessionHandle>.fromOpaque(UnsafeRawPointer(session)).release()
}

/// Reads a C string argument that must be valid UTF-8 of sane length.
private func name(_ p: UnsafePointer<CChar>) -> String { String(cString: p) }

@_cdecl("medinfer_session_run")
public func medinfer_session_run(_ session: OpaquePointer?, _ inputs: UnsafePointer<medinfer_input_tensor>?,
                                 _ inputCount: Int, _ outputs: UnsafeMutablePointer<medinfer_output_tensor>?,
                                 _ outputCount: Int) -> Int32 {
    cEntryPoint { () throws(MedInferError) in
        let function = "medinfer_session_run"
        let handle = try SessionHandle.from(session, in: function)
        let network = handle.session.model
        let expected = network.inputs.count
        guard inputCount == expected else {
            throw .invalidArgument("\(function): the model has \(expected) input(s) (\(network.inputs.map(\.name).joined(separator: ", "))), \(UInt(bitPattern: inputCount)) given")
        }
        guard outputCount >= 0, outputCount <= network.outputs.count * 4 + 16 else {
            throw .invalidArgument("\(function): 'output_count' \(UInt(bitPattern: outputCount)) is not a valid count")
        }
        if inputCount > 0 { _ = try required(inputs, "inputs", in: function) }
        if outputCount > 0 { _ = try required(outputs, "outputs", in: function) }

        // Inputs in model order, each given once.
        var pointers = [UnsafePointer<Float>?](repeating: nil, count: expected)
        var shapes = [[Int]](repeating: [], count: expected)
        for i in 0 ..< inputCount {
            let tensor = inputs![i]
            let index: Int
            if let p = tensor.name {
                let n = name(p)
                guard let found = network.inputs.firstIndex(where: { $0.name == n }) else {
                    throw .invalidArgument("\(function): inputs[\(i)]: the model has no input named '\(n)' (inputs: \(network.inputs.map(\.name).joined(separator: ", ")))")
                }
                index = found
            } else {
                index = i
            }
            guard pointers[index] == nil else {
                throw .invalidArgument("\(function): input '\(network.inputs[index].name)' is given twice")
            }
            let label = "\(function): input '\(network.inputs[index].name)'"
            guard tensor.rank <= Int(MEDINFER_MAX_RANK) else {
                throw .invalidArgument("\(label): rank \(tensor.rank) is above MEDINFER_MAX_RANK (\(MEDINFER_MAX_RANK))")
            }
            var shape: [Int] = []
            var count = 1
            withUnsafeBytes(of: tensor.shape) { raw in
                let dims = raw.bindMemory(to: Int64.self)
                for a in 0 ..< tensor.rank { shape.append(Int(clamping: dims[a])) }
            }
            for d in shape {
                guard d > 0 else { throw .invalidArgument("\(label): shape \(shape) has a dimension \(d) (every dimension must be at least 1)") }
                let (p, o) = count.multipliedReportingOverflow(by: d)
                guard !o, p <= 1 << 30 else { throw .outOfMemory("\(label): shape \(shape) is too large") }
                count = p
            }
            guard tensor.length == count else {
                throw .invalidArgument("\(label): length \(tensor.length) does not match shape \(shape) (\(count) elements)")
            }
            pointers[index] = try required(tensor.data, "inputs[\(i)].data", in: function)
            shapes[index] = shape
        }

        let outputShapes = try handle.session.outputShapes(inputShapes: shapes)
        // Requested outputs: resolve, report shapes, check capacities before running.
        var destinations = [UnsafeMutablePointer<Float>?](repeating: nil, count: network.outputs.count)
        var tooSmall: String?
        for j in 0 ..< outputCount {
            let index: Int
            if let p = outputs![j].name {
                let n = name(p)
                guard let found = network.outputs.firstIndex(where: { $0.name == n }) else {
                    throw .invalidArgument("\(function): outputs[\(j)]: the model has no output named '\(n)' (outputs: \(network.outputs.map(\.name).joined(separator: ", ")))")
                }
                index = found
            } else {
                guard j < network.outputs.count else {
                    throw .invalidArgument("\(function): outputs[\(j)] has no name and the model has only \(network.outputs.count) outputs")
                }
                index = j
            }
            let shape = outputShapes[index]
            guard shape.count <= Int(MEDINFER_MAX_RANK) else { throw .unsupported("\(function): output rank \(shape.count)") }
            outputs![j].rank = shape.count
            withUnsafeMutableBytes(of: &outputs![j].shape) { raw in
                let dims = raw.bindMemory(to: Int64.self)
                for a in 0 ..< Int(MEDINFER_MAX_RANK) { dims[a] = a < shape.count ? Int64(shape[a]) : 0 }
            }
            let needed = shape.reduce(1, *)
            if outputs![j].length < needed || (needed > 0 && outputs![j].data == nil) {
                tooSmall = tooSmall ?? "\(function): output '\(network.outputs[index].name)' needs \(needed) floats (shape \(shape)), the buffer holds \(outputs![j].data == nil ? 0 : outputs![j].length)"
            }
            destinations[index] = outputs![j].data
        }
        if let tooSmall { throw .bufferTooSmall(tooSmall) }
        _ = try handle.session.run(inputs: pointers.map { $0! }, inputShapes: shapes, outputs: destinations)
    }
}

/// A `medinfer_image` checked (sizes, stride, format) with the session's image
/// conventions (layout, channels, fixed size) read off its model once.
struct CheckedImage {
    let pixels: UnsafePointer<UInt8>
    let width: Int, height: Int, stride: Int
    let format: ImageInput.PixelFormat
    let input: ImageInput
    /// The model input's shape for this image (batch 1).
    var shape: [Int] { input.shape(height: height, width: width) }

    init(_ image: UnsafePointer<medinfer_image>?, handle: SessionHandle, in function: String) throws(MedInferError) {
        let image = try required(image, "image", in: function).pointee
        guard image.struct_size >= MemoryLayout<medinfer_image>.size else {
            throw .invalidArgument("\(function): image.struct_size \(image.struct_size) is smaller than sizeof(medinfer_image) (\(MemoryLayout<medinfer_image>.size))")
        }
        guard let format = ImageInput.PixelFormat(rawValue: image.format) else {
            throw .invalidArgument("\(function): image.format \(image.format) is not MEDINFER_PIXELS_RGB, _RGBA or _GREY")
        }
        guard image.reserved == 0 else { throw .invalidArgument("\(function): image.reserved must be 0") }
        pixels = try required(image.pixels, "image.pixels", in: function)
        let bytesPerPixel = format == .rgb ? 3 : (format == .rgba ? 4 : 1)
        guard image.width >= 1, image.height >= 1, image.width <= 1 << 16, image.height <= 1 << 16 else {
            throw .invalidArgument("\(function): image size \(image.width)x\(image.height) must be between 1x1 and 65536x65536")
        }
        guard image.stride >= image.width * bytesPerPixel, image.stride <= 1 << 20 else {
            throw .invalidArgument("\(function): image.stride \(image.stride) is smaller than a row (\(image.width) pixels x \(bytesPerPixel) bytes = \(image.width * bytesPerPixel)) or too large")
        }
        if handle.image == nil {
            do throws(MedInferError) { handle.image = .success(try ImageInput(model: handle.session.model)) }
            catch { handle.image = .failure(error) }
        }
        input = try handle.image!.get()
        self.format = format
        width = image.width; height = image.height; stride = image.stride
    }

    /// Writes the model input tensor (shape.reduce(1, *) floats).
    func fill(_ out: UnsafeMutablePointer<Float>) {
        input.fill(out, pixels: pixels, width: width, height: height, stride: stride, format: format)
    }
}

@_cdecl("medinfer_classify_image")
public func medinfer_classify_image(_ session: OpaquePointer?, _ image: UnsafePointer<medinfer_image>?,
                                    _ probabilities: UnsafeMutablePointer<Float>?, _ length: Int,
                                    _ outCount: UnsafeMutablePointer<Int>?) -> Int32 {
    cEntryPoint { () throws(MedInferError) in
        let function = "medinfer_classify_image"
        let handle = try SessionHandle.from(session, in: function)
        let image = try CheckedImage(image, handle: handle, in: function)
        let shape = image.shape
        let outputShapes = try handle.session.outputShapes(inputShapes: [shape])
        let needed = outputShapes[0].reduce(1, *)
        outCount?.pointee = needed
        guard length >= needed, probabilities != nil || needed == 0 else {
            throw .bufferTooSmall("\(function): the model writes \(needed) values (shape \(outputShapes[0])), the buffer holds \(probabilities == nil ? 0 : length)")
        }
        let count = shape.reduce(1, *)
        if handle.imageBuffer.count < count { handle.imageBuffer = [Float](repeating: 0, count: count) }
        try handle.imageBuffer.withUnsafeMutableBufferPointer { (buffer) throws(MedInferError) in
            image.fill(buffer.baseAddress!)
            var destinations = [UnsafeMutablePointer<Float>?](repeating: nil, count: handle.session.model.outputs.count)
            destinations[0] = probabilities
            _ = try handle.session.run(inputs: [UnsafePointer(buffer.baseAddress!)], inputShapes: [shape], outputs: destinations)
        }
    }
}
