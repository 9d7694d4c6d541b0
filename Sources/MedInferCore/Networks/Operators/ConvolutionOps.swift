#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Conv, MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool over NCHW tensors
/// (1-D inputs run as height-1 images). Pads, strides, dilations, groups, auto_pad and
/// ceil_mode follow the ONNX operator definitions.

/// A convolution kernel object (direct GEMM or Winograd) that runs one layer.
protocol ConvolutionKernel: AnyObject {
    var geometry: Conv2DGeometry { get }
    /// Whether a 2×2 stride-2 max pool follows inside the kernel.
    var poolAfter: Bool { get }
    func run(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int)
    /// The same layer (weights, bias, activation, pool) for another input and output
    /// size: a crop of the image, for regional re-execution.
    func resized(to geometry: Conv2DGeometry) -> any ConvolutionKernel
}

extension Conv2DKernel: ConvolutionKernel {}
extension WinogradConv3x3: ConvolutionKernel {
    var geometry: Conv2DGeometry { g }
}

final class ConvStep: NetworkStep {
    let input: Int, output: Int, batch: Int, kernel: any ConvolutionKernel
    init(input: Int, output: Int, batch: Int, kernel: any ConvolutionKernel) {
        self.input = input; self.output = output; self.batch = batch; self.kernel = kernel
    }
    func run(_ slots: UnsafeMutablePointer<UnsafeMutablePointer<Float>>) {
        kernel.run(input: slots[input], output: slots[output], batch: batch)
    }
}

final class PoolStep: NetworkStep {
    enum Kind { case max, average(countIncludePad: Bool), globalAverage(Int), globalMax(Int) }
    let input: Int, output: Int, planes: Int, kind: Kind, geometry: Pool2DGeometry?
    init(input: Int, output: Int, planes: Int, kind: Kind, geometry: Pool2DGeometry?) {
        self.input = input; self.output = output; self.planes = planes; self.kind = kind; self.geometry = geometry
    }
    func run(_ slots: UnsafeMutablePointer<UnsafeMutablePointer<Float>>) {
        switch kind {
        case .max: Pooling.max(slots[input], slots[output], planes: planes, geometry!)
        case .average(let include): Pooling.average(slots[input], slots[output], planes: planes, geometry!, countIncludePad: include)
        case .globalAverage(let size): Pooling.globalAverage(slots[input], slots[output], planes: planes, size: size)
        case .globalMax(let size): Pooling.globalMax(slots[input], slots[output], planes: planes, size: size)
        }
    }
}

/// Spatial window parameters shared by Conv and the pools, resolved to 2-D.
struct WindowParameters {
    var kernel: [Int], strides: [Int], dilations: [Int]
    var padBegin: [Int], padEnd: [Int]
    var output: [Int]

    static func resolve(_ c: NodeContext, spatial: [Int], kernel: [Int], ceilMode: Bool) throws(MedInferError) -> WindowParameters {
        let n = spatial.count
        let strides = try c.ints("strides") ?? [Int](repeating: 1, count: n)
        let dilations = try c.ints("dilations") ?? [Int](repeating: 1, count: n)
        var pads = try c.ints("pads") ?? [Int](repeating: 0, count: 2 * n)
        guard kernel.count == n, strides.count == n, dilations.count == n, pads.count == 2 * n else {
            throw .shapeMismatch("kernel_shape/strides/dilations/pads do not match \(n) spatial axes")
        }
        guard kernel.allSatisfy({ $0 >= 1 }), strides.allSatisfy({ $0 >= 1 }), dilations.allSatisfy({ $0 >= 1 }),
              pads.allSatisfy({ $0 >= 0 && $0 < (1 << 20) }), kernel.allSatisfy({ $0 < (1 << 20) }),
              strides.allSatisfy({ $0 < (1 << 20) }), dilations.allSatisfy({ $0 < (1 << 20) }) else {
            throw .parse("kernel_shape \(kernel), strides \(strides), dilations \(dilations), pads \(pads) must be positive (pads non-negative)")
        }
        let autoPad = try c.string("auto_pad", "NOTSET")
        var output = [Int](repeating: 0, count: n)
        for i in 0 ..< n {
            let extent = dilations[i] * (kernel[i] - 1) + 1
            switch autoPad {
            case "NOTSET":
                // As onnxruntime computes it: integer division truncating toward zero, so
                // a window up to one stride larger than the padded input still gives one
                // output (its out-of-range part reads as padding).
                let span = spatial[i] + pads[i] + pads[i + n] - extent
                var o = (ceilMode && span > 0 ? (span + strides[i] - 1) / strides[i] : span / strides[i]) + 1
                // A ceil_mode window must start inside the input or its left padding.
                if ceilMode && o > 1 && (o - 1) * strides[i] >= spatial[i] + pads[i] { o -= 1 }
                guard o >= 1 else {
                    throw .shapeMismatch("window \(extent) is larger than the padded input \(spatial[i] + pads[i] + pads[i + n]) on axis \(i)")
                }
                output[i] = o
            case "VALID":
                guard spatial[i] >= extent else { throw .shapeMismatch("window \(extent) is larger than the input \(spatial[i])") }
                output[i] = (spatial[i] - extent) / strides[i] + 1
                pads[i] = 0; pads[i + n] = 0
            case "SAME_UPPER", "SAME_LOWER":
                output[i] = (spatial[i] + strides[i] - 1) / strides[i]
                let total = max(0, (output[i] - 1) * strides[i] + extent - spatial[i])
                pads[i] = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2
                pads[i + n] = total - pads[i]
            default:
                throw .parse("auto_pad '\(autoPad)' is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER")
            }
        }
        return WindowParameters(kernel: kernel, strides: strides, dilations: dilations,
                                padBegin: Array(pads[..<n]), padEnd: Array(pads[n...]), output: output)
    }

    var pool2D: (Int, Int) -> Pool2DGeometry {
        { h, w in
            let two = self.kernel.count == 2
            return Pool2DGeometry(height: h, width: w,
                                  kernelH: two ? self.kernel[0] : 1, kernelW: self.kernel[two ? 1 : 0],
                                  strideH: two ? self.strides[0] : 1, strideW: self.strides[two ? 1 : 0],
                                  dilationH: two ? self.dilations[0] : 1, dilationW: self.dilations[two ? 1 : 0],
                                  padTop: two ? self.padBegin[0] : 0, padLeft: self.padBegin[two ? 1 : 0],
                                  padBottom: two ? self.padEnd[0] : 0, padRight: self.padEnd[two ? 1 : 0],
                                  outHeight: two ? self.output[0] : 1, outWidth: self.output[two ? 1 : 0])
        }
    }
}

/// Which algorithm 3×3 convolutions use: Winograd F(4×4, 3×3) unless
/// MEDINFER_CONV=direct asks for the implicit-im2col GEMM (for comparisons).
enum ConvolutionAlgorithm {
    static let winogradEnabled: Bool = {
        if let v = getenv("MEDINFER_CONV"), String(cString: v) == "direct" { return false }
        return true
    }()
}

extension Operators {
    /// [N, C, H, W] view of a 3-D or 4-D input.
    static func imageShape(_ shape: [Int]) throws(MedInferError) -> (n: Int, c: Int, h: Int, w: Int) {
        switch shape.count {
        case 3: return (shape[0], shape[1], 1, shape[2])
        case 4: return (shape[0], shape[1], shape[2], shape[3])
        default: throw .unsupported("input of rank \(shape.count): only 1-D and 2-D (rank 3 and 4, NCHW) windows are supported")
        }
    }

    static func conv(_ c: NodeContext) throws(MedInferError) -> [PlanValue] {
        let x = try c.input(0)
        guard var w = try c.constantInput(1, "weights") else { throw .parse("Conv without weights") }
        // A scalar the producer of the input left for the weights (see Operators.binary).
        let inputScale = c.planner.inputScale[c.index]
        if let s = inputScale { w = ConstTensor(shape: w.shape, floats: w.floatValues.map { $0 * s }) }
        let (n, channels, h, width) = try imageShape(x.shape)
        guard w.shape.count == x.shape.count else { throw .shapeMismatch("weights \(w.shape) for input \(x.shape)") }
        let group = try c.int("group", 1)
        let outChannels = w.shape[0]
        guard group >= 1, channels % group == 0, outChannels % group == 0, w.shape[1] == channels / group else {
            throw .shapeMismatch("weights \(w.shape) with group \(group) do not fit \(channels) input channels")
        }
        let kernel = try c.ints("kernel_shape") ?? Array(w.shape[2...])
        guard kernel == Array(w.shape[2...]) else { throw .shapeMismatch("kernel_shape \(kernel) differs from weights \(w.shape)") }
        let spatial = x.shape.count == 4 ? [h, width] : [width]
        let p = try WindowParameters.resolve(c, spatial: spatial, kernel: kernel, ceilMode: false)
        var bias: [Float]?
        if let b = try c.constantInput(2, "bias") {
            guard b.count == outChannels else { throw .shapeMismatch("bias of \(b.count) values for \(outChannels) channels") }
            bias = b.floatValues
        }
        let two = x.shape.count == 4
        let geometry = Conv2DGeometry(
            channels: channels, height: h, width: width, outChannels: outChannels, groups: group,
            kernelH: two ? kernel[0] : 1, kernelW: kernel[two ? 1 : 0],
            strideH: two ? p.strides[0] : 1, strideW: p.strides[two ? 1 : 0],
            dilationH: two ? p.dilations[0] : 1, dilationW: p.dilations[two ? 1 : 0],
            padTop: two ? p.padBegin[0] : 0, padLeft: p.padBegin[two ? 1 : 0],
            outHeight: two ? p.output[0] : 1, outWidth: p.output[two ? 1 : 0])
        let activation = c.allInputsConstant ? nil : try c.fuseActivation(after: c.node.outputs[0])
        // A following 2×2 stride-2 max pool is computed by the convolution itself.
        let pool = two && !c.allInputsConstant
            && p.output[0] >= 2 && p.output[1] >= 2 && fusePool(c, after: activation?.1 ?? c.node.outputs[0])
        let outShape = [n, outChannels] + (pool ? [p.output[0] / 2, p.output[1] / 2] : p.output)
        let input = try c.builder.tensor(x)
        let out = try c.newTensor(outShape)
        // Packed (and transformed) weights depend only on the weights and the layer's
        // channel counts: made once per model, shared by every plan and session.
        let cache = c.planner.model.weightCache
        let weightKey = c.node.inputs[1] + "|" + c.node.outputs[0] + (inputScale.map { "|x\($0.bitPattern)" } ?? "")
        if WinogradConv3x3.applies(to: geometry) && ConvolutionAlgorithm.winogradEnabled {
            let packed = try w.withFloatBytes { (weights) throws(MedInferError) in
                try cache.value(weightKey + "|winograd") { () throws(MedInferError) in
                    guard let made = WinogradConv3x3.Weights(weights, outChannels: outChannels, channels: channels,
                                                             memory: cache.memory) else {
                        throw .outOfMemory("cannot allocate the transformed weights of \(c.node.label)")
                    }
                    return made
                }
            }
            let buffers = c.builder.paddedInputs
            // The step before may write this layer's input straight into its padded buffer:
            // a Winograd layer (into the buffer it does not read itself) or an image resize.
            var writer: (step: NetworkStep, buffer: GemmWorkspace)?
            if n == 1, !c.builder.retainAll, inputReadOnlyHere(c), let last = c.builder.steps.last {
                if let conv = last as? ConvStep, let previous = conv.kernel as? WinogradConv3x3, conv.batch == 1,
                   conv.output == input.slot, previous.outputBuffer == nil {
                    writer = (last, previous.readsInput(from: buffers[0]) ? buffers[1] : buffers[0])
                } else if let resize = last as? ResizeStep, resize.canWriteIntoPadded, resize.destination == input.slot {
                    writer = (last, buffers[0])
                }
            }
            if writer != nil, !c.builder.divertLastStep(writing: input.slot) { writer = nil }
            let kernelObject = WinogradConv3x3(geometry: geometry, weights: packed, bias: bias,
                                               activation: activation?.0 ?? .identity, poolAfter: pool,
                                               scratch: c.builder.kernelScratch, paddedInputs: writer?.buffer ?? buffers[0])
            if let writer {
                kernelObject.inputPrepadded = true
                if let conv = writer.step as? ConvStep, let previous = conv.kernel as? WinogradConv3x3 {
                    previous.writeOutput(into: kernelObject.paddedInput)
                } else if let resize = writer.step as? ResizeStep {
                    resize.writeOutput(into: kernelObject.paddedInput)
                }
            }
            return try c.emit(ConvStep(input: input.slot, output: out.slot, batch: n, kernel: kernelObject),
                          reading: [input], writing: [out])
        }
        let packed = try w.withFloats { (weights) throws(MedInferError) in
            cache.value(weightKey + "|direct") { PackedWeights(Conv2DKernel.pack(weights, geometry: geometry)) }
        }
        let kernelObject = Conv2DKernel(geometry: geometry, weights: packed.groups, bias: bias,
                                        activation: activation?.0 ?? .identity, poolAfter: pool,
                                        workspace: c.builder.kernelScratch)
        return try c.emit(ConvStep(input: input.slot, output: out.slot, batch: n, kernel: kernelObject),
                      reading: [input], writing: [out])
    }

    /// Whether nothing but this node reads its first input (directly, or through a Mul
    /// folded into its weights), so the step that writes it may write elsewhere.
    static func inputReadOnlyHere(_ c: NodeContext) -> Bool {
        let value = c.node.inputs[0]
        guard c.planner.soleConsumer(of: value)?.index == c.index else { return false }
        guard c.planner.inputScale[c.index] != nil else { return true }
        guard let mul = c.planner.producer(of: value), mul.node.opType == "Mul", let source = mul.node.inputs.first
        else { return false }
        return c.planner.soleConsumer(of: source)?.index == mul.index
    }

    /// Whether the sole consumer of `value` is a plain 2×2 stride-2 MaxPool (no padding,
    /// dilation or ceil mode); if so it is marked as computed by the producer.
    static func fusePool(_ c: NodeContext, after value: String) -> Bool {
        guard let (index, next) = c.planner.soleConsumer(of: value), next.opType == "MaxPool",
              next.inputs.first == value, next.outputs.count == 1 || next.outputs.dropFirst().allSatisfy(\.isEmpty)
        else { return false }
        var ok = true
        for a in next.attributes {
            switch (a.name, a.value) {
            case ("kernel_shape", .ints(let v)), ("strides", .ints(let v)): ok = ok && v == [2, 2]
            case ("pads", .ints(let v)): ok = ok && v.allSatisfy { $0 == 0 }
            case ("dilations", .ints(let v)): ok = ok && v.allSatisfy { $0 == 1 }
            case ("ceil_mode", .int(let v)), ("storage_order", .int(let v)): ok = ok && v == 0
            case ("auto_pad", .string(let v)): ok = ok && (v == "NOTSET" || v == "VALID")
            default: ok = false
            }
        }
        guard ok, next.attributes.contains(where: { $0.name == "kernel_shape" }),
              next.attributes.contains(where: { $0.name == "strides" }) else { return false }
        c.planner.markFused(index, outputOf: c.node.outputs[0])
        return true
    }

    static func pool(_ c: NodeContext, max isMax: Bool) throws(MedInferError) -> [PlanValue] {
        let x = try c.input(0)
        let (n, channels, h, w) = try imageShape(x.shape)
        guard let kernel = try c.ints("kernel_shape") else { throw .parse("kernel_shape is required") }
        let spatial = x.shape.count == 4 ? [h, w] : [w]
        if try c.int("storage_order", 0) != 0 { throw .unsupported("storage_order 1") }
        if c.node.outputs.count > 1 && !c.node.outputs[1].isEmpty { throw .unsupported("MaxPool indices output") }
        let p = try WindowParameters.resolve(c, spatial: spatial, kernel: kernel, ceilMode: try c.int("ceil_mode", 0) != 0)
        let geometry = p.pool2D(h, w)
        let input = try c.builder.tensor(x)
        let out = try c.newTensor([n, channels] + p.output)
        let kind: PoolStep.Kind = isMax ? .max : .average(countIncludePad: try c.int("count_include_pad", 0) != 0)
        return try c.emit(PoolStep(input: input.slot, output: out.slot, planes: n * channels, kind: kind, geometry: geometry),
                      reading: [input], writing: [out])
    }

    static func maxPool(_ c: NodeContext) throws(MedInferError) -> [PlanValue] { try pool(c, max: true) }
    static func averagePool(_ c: NodeContext) throws(MedInferError) -> [PlanValue] { try pool(c, max: false) }

    static func globalPool(_ c: NodeContext, max isMax: Bool) throws(MedInferError) -> [PlanValue] {
        let x = try c.input(0)
        guard x.shape.count >= 3 else { throw .shapeMismatch("input \(x.shape) has no spatial axes") }
        let planes = x.shape[0] * x.shape[1]
        let size = x.shape[2...].reduce(1, *)
        let input = try c.builder.tensor(x)
        let out = try c.newTensor([x.shape[0], x.shape[1]] + [Int](repeating: 1, count: x.shape.count - 2))
        return try c.emit(PoolStep(input: input.slot, output: out.slot, planes: planes,
                               kind: isMax ? .globalMax(size) : .globalAverage(size), geometry: nil),
                      reading: [input], writing: [out])
    }

    static func globalAveragePool(_ c: NodeContext) throws(MedInferError) -> [PlanValue] { try globalPool(c, max: false) }
    static func globalMaxPool(_ c: NodeContext) throws(MedInferError) -> [PlanValue] { try globalPool(c, max: true) }
}
