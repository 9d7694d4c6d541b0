#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Re-runs a convolutional network after part of its input changed, recomputing of each
/// tensor only the box that depends on the changed input box. An image explanation
/// evaluates long chains of inputs that differ from the previous one in one segment
/// (permutation sampling adds one segment at a time): a segment of 1/64 of the image
/// touches a few percent of the early layers, which hold most of the arithmetic.
///
/// Every intermediate tensor keeps its memory between runs (a plan with no buffer reuse).
/// Convolutions recompute their dirty output box from a crop of their input (the same
/// layer re-made for the crop's size; the crop's outside is the layer's zero padding);
/// cheap element-wise, transpose and resize steps rerun whole and pass on the mapped box;
/// any other step reruns whole and marks its output dirty everywhere. Results equal a
/// full run up to float rounding (Winograd tiles start at the crop, not the image).
package final class RegionalExecution {
    package typealias Box = [Range<Int>]

    package let plan: ExecutionPlan
    /// The model input the network currently holds; callers write into it, then call
    /// `update(changed:)` with the box they wrote.
    let input: FloatBuffer
    /// `input`'s values, for callers outside the module.
    package var inputValues: UnsafeMutablePointer<Float> { input.pointer }
    let inputShape: [Int]
    private let arena: UnsafeMutablePointer<Float>
    private let table: UnsafeMutablePointer<UnsafeMutablePointer<Float>>
    private var dirty: [Box?]
    /// Crop-sized convolution kernels by step and crop geometry.
    private var cropKernels: [Int: [CropKey: any ConvolutionKernel]] = [:]
    private var cropIn: FloatBuffer
    private var cropOut: FloatBuffer
    private var ranOnce = false
    private let inputSlot: Int

    private struct CropKey: Hashable { var height: Int, width: Int, padTop: Int, padLeft: Int, outHeight: Int, outWidth: Int }

    /// A plan of `model` for one input of `shape` (the model's only input), or nil when the
    /// plan has no convolution (nothing to gain) or the model has other inputs.
    package init?(model: NetworkModel, shape: [Int]) throws(MedInferError) {
        guard model.inputs.count == 1 else { return nil }
        plan = try model.plan(inputShapes: [shape], retainingAll: true)
        guard plan.steps.contains(where: { $0 is ConvStep }), plan.stepIO.count == plan.steps.count,
              let slot = plan.locations.firstIndex(where: { if case .input = $0 { return true } else { return false } })
        else { return nil }
        inputSlot = slot
        // Keeping every tensor multiplies the arena; beyond 256 MB whole runs are the better deal.
        guard plan.arenaFloats <= 1 << 26 else { return nil }
        inputShape = shape
        input = FloatBuffer(count: shape.reduce(1, *))
        guard let memory = malloc(max(plan.arenaFloats, 16) * 4 + 64) else {
            throw .outOfMemory("cannot allocate the \(plan.arenaFloats * 4)-byte tensor arena")
        }
        free(memory)
        arena = .allocate(capacity: max(plan.arenaFloats, 16))
        table = .allocate(capacity: max(plan.locations.count, 1))
        plan.bind(table: table, arena: arena, inputs: [input.readOnly])
        dirty = [Box?](repeating: nil, count: plan.locations.count)
        cropIn = FloatBuffer(count: 16)
        cropOut = FloatBuffer(count: 16)
    }

    deinit {
        arena.deallocate()
        table.deallocate()
    }

    /// Runs every step on the current input.
    package func runAll() {
        plan.execute(table)
        ranOnce = true
    }

    /// Recomputes what depends on `changed` (a box of the input tensor, one range per axis),
    /// after the caller wrote the new values into `input`.
    package func update(changed: Box) {
        guard ranOnce else { runAll(); return }
        for i in dirty.indices { dirty[i] = nil }
        dirty[inputSlot] = changed
        for (index, step) in plan.steps.enumerated() {
            let io = plan.stepIO[index]
            let dirtyReads = io.reads.filter { dirty[$0.slot] != nil }
            if dirtyReads.isEmpty { continue }
            if let transpose = step as? TransposeStep, let box = dirty[transpose.source],
               box.count == transpose.shape.count, box.count <= 8 {
                dirty[transpose.destination] = transposeBox(transpose, box: box)
                continue
            }
            if let resize = step as? ResizeStep, let box = dirty[io.reads[0].slot], resizeBox(resize, io: io, box: box) {
                continue
            }
            if let conv = step as? ConvStep, io.reads.count == 1, io.writes.count == 1, conv.batch == 1,
               let box = dirty[io.reads[0].slot] {
                dirty[io.writes[0].slot] = runConvolution(step: index, conv, input: io.reads[0], output: io.writes[0], box: box)
                continue
            }
            step.run(table)
            for out in io.writes { dirty[out.slot] = mappedBox(step, io: io, output: out) }
        }
    }

    /// The network's first output (as the plan computed it last).
    package func copyFirstOutput(to destination: UnsafeMutablePointer<Float>) {
        switch plan.outputs[0] {
        case .slot(let slot, let shape): destination.update(from: table[slot], count: shape.reduce(1, *))
        case .constant(let c):
            let values = c.floatValues
            destination.update(from: values, count: values.count)
        }
    }


    private func full(_ shape: [Int]) -> Box { shape.map { 0 ..< $0 } }

    /// The box of `output` that changed when a whole-rerun step read its dirty inputs
    /// (a resize that `resizeBox` could not map changes everything).
    private func mappedBox(_ step: NetworkStep, io: StepIO, output: RuntimeTensor) -> Box {
        let everything = full(output.shape)
        switch step {
        case let t as TransposeStep:
            guard let box = dirty[t.source], box.count == t.permutation.count else { return everything }
            return t.permutation.map { box[$0] }
        case is BinaryStep, is UnaryStep, is ChannelAffineStep:
            var hull: Box?
            for read in io.reads {
                guard let box = dirty[read.slot] else { continue }
                guard read.shape == output.shape else { return everything }
                hull = hull.map { zip($0, box).map { min($0.lowerBound, $1.lowerBound) ..< max($0.upperBound, $1.upperBound) } } ?? box
            }
            return hull ?? everything
        default:
            return everything
        }
    }

    /// Moves only the dirty box of a transpose's input; returns the output's box.
    private func transposeBox(_ t: TransposeStep, box: Box) -> Box {
        let rank = t.shape.count
        let strides = rowMajorStrides(t.shape)
        let outBox = t.permutation.map { box[$0] }
        let outStrides = rowMajorStrides(t.permutation.map { t.shape[$0] })
        // Source stride of each output axis; the innermost output axis runs as a loop.
        let sourceStride = t.permutation.map { strides[$0] }
        let source = table[t.source], destination = table[t.destination]
        if outBox.contains(where: \.isEmpty) { return outBox }
        var index = outBox.map(\.lowerBound)
        let last = rank - 1, run = outBox[last]
        while true {
            var from = 0, to = 0
            for a in 0 ..< last { from += index[a] * sourceStride[a]; to += index[a] * outStrides[a] }
            let step = sourceStride[last]
            for i in run { destination[to + i] = source[from + i * step] }
            if !Self.advance(&index, within: outBox, axes: last) { break }
        }
        return outBox
    }

    /// Recomputes, pass by pass, only the box of a resize's outputs that the dirty input
    /// box reaches (marking each output's box). False when a pass's axis is not found
    /// (the caller then reruns the step whole).
    private func resizeBox(_ r: ResizeStep, io: StepIO, box: Box) -> Bool {
        guard r.plane == nil else { return false }   // not made for regional plans (retainAll)
        var shape = io.reads[0].shape, box = box
        var work: [(pass: ResizeStep.Pass, axis: Int, inShape: [Int], outBox: Box)] = []
        for pass in r.passes {
            guard let axis = shape.indices.first(where: { a in
                shape[..<a].reduce(1, *) == pass.outer && shape[a] == pass.inputLength
                    && shape[(a + 1)...].reduce(1, *) == pass.inner
            }) else { return false }
            let range = box[axis], resampling = pass.resampling
            var lo = Int.max, hi = Int.min
            for o in resampling.index0.indices {
                if range.contains(Int(resampling.index0[o])) || range.contains(Int(resampling.index1[o])) {
                    lo = min(lo, o); hi = max(hi, o + 1)
                }
            }
            if lo >= hi { return false }
            let inShape = shape
            box[axis] = lo ..< hi
            shape[axis] = resampling.index0.count
            work.append((pass, axis, inShape, box))
        }
        for (pass, axis, inShape, outBox) in work {
            resizePass(pass, axis: axis, inShape: inShape, outBox: outBox)
            dirty[pass.destination] = outBox
        }
        return true
    }

    /// One resize pass on the elements of `outBox` only (the kernel's own arithmetic).
    private func resizePass(_ pass: ResizeStep.Pass, axis: Int, inShape: [Int], outBox: Box) {
        let rank = inShape.count
        var outShape = inShape
        outShape[axis] = pass.resampling.index0.count
        let inStrides = rowMajorStrides(inShape), outStrides = rowMajorStrides(outShape)
        if outBox.contains(where: \.isEmpty) { return }
        let source = table[pass.source], destination = table[pass.destination]
        let blend = pass.inner == 1 || pass.inner == 3   // those kernel paths blend even at weight 0
        pass.resampling.withTables { i0, i1, w1 in
            var index = outBox.map(\.lowerBound)
            while true {
                var from = 0, to = 0
                for a in 0 ..< rank where a != axis { from += index[a] * inStrides[a]; to += index[a] * outStrides[a] }
                let x = index[axis]
                let a = source[from + Int(i0[x]) * inStrides[axis]], b = source[from + Int(i1[x]) * inStrides[axis]]
                let w = w1[x]
                destination[to + x * outStrides[axis]] = blend || w != 0 ? a * (1 - w) + b * w : a
                if !Self.advance(&index, within: outBox, axes: rank) { break }
            }
        }
    }

    /// Recomputes the output box of a convolution that depends on its input's dirty box,
    /// from a crop of the input. Returns the output's dirty box (nil: nothing changed).
    private func runConvolution(step index: Int, _ conv: ConvStep, input: RuntimeTensor, output: RuntimeTensor,
                                box: Box) -> Box? {
        let g = conv.kernel.geometry, pooled = conv.kernel.poolAfter
        guard input.shape.count == 4, output.shape.count == 4, box.count == 4 else {
            conv.run(table)
            return full(output.shape)
        }
        // Convolution output rows/columns whose window meets the dirty input rows/columns.
        func affected(_ range: Range<Int>, pad: Int, stride: Int, dilation: Int, kernel: Int, outLength: Int) -> Range<Int> {
            let reach = dilation * (kernel - 1)
            let first = max(0, Self.ceilDiv(range.lowerBound + pad - reach, stride))
            let last = min(outLength, Self.floorDiv(range.upperBound - 1 + pad, stride) + 1)
            return first ..< max(first, last)
        }
        var rows = affected(box[2], pad: g.padTop, stride: g.strideH, dilation: g.dilationH, kernel: g.kernelH, outLength: g.outHeight)
        var columns = affected(box[3], pad: g.padLeft, stride: g.strideW, dilation: g.dilationW, kernel: g.kernelW,
                               outLength: g.outWidth)
        var outRows = rows, outColumns = columns
        if pooled {
            outRows = rows.lowerBound / 2 ..< min(g.outHeight / 2, Self.ceilDiv(rows.upperBound, 2))
            outColumns = columns.lowerBound / 2 ..< min(g.outWidth / 2, Self.ceilDiv(columns.upperBound, 2))
            rows = 2 * outRows.lowerBound ..< 2 * outRows.upperBound
            columns = 2 * outColumns.lowerBound ..< 2 * outColumns.upperBound
        }
        if outRows.isEmpty || outColumns.isEmpty { return nil }   // the change is cut off (stride, pool)
        let producedHeight = output.shape[2], producedWidth = output.shape[3]
        // A large box costs as much as the whole layer, and whole is better tiled.
        if outRows.count * outColumns.count * 2 > producedHeight * producedWidth {
            conv.run(table)
            return [0 ..< 1, 0 ..< g.outChannels, outRows, outColumns]
        }
        // The input rows/columns the recomputed outputs read, clipped to the image; what
        // lies outside becomes the crop layer's own padding.
        let top = rows.lowerBound * g.strideH - g.padTop
        let bottom = (rows.upperBound - 1) * g.strideH - g.padTop + g.dilationH * (g.kernelH - 1) + 1
        let left = columns.lowerBound * g.strideW - g.padLeft
        let right = (columns.upperBound - 1) * g.strideW - g.padLeft + g.dilationW * (g.kernelW - 1) + 1
        let y0 = max(0, top), y1 = min(g.height, bottom), x0 = max(0, left), x1 = min(g.width, right)
        guard y0 < y1, x0 < x1 else { conv.run(table); return full(output.shape) }
        var crop = g
        crop.height = y1 - y0; crop.width = x1 - x0
        crop.padTop = y0 - top; crop.padLeft = x0 - left
        crop.outHeight = rows.count; crop.outWidth = columns.count
        let key = CropKey(height: crop.height, width: crop.width, padTop: crop.padTop, padLeft: crop.padLeft,
                          outHeight: crop.outHeight, outWidth: crop.outWidth)
        let kernel: any ConvolutionKernel
        if let cached = cropKernels[index]?[key] {
            kernel = cached
        } else {
            kernel = conv.kernel.resized(to: crop)
            cropKernels[index, default: [:]][key] = kernel
        }
        let channels = g.channels, height = g.height, width = g.width
        let cropPlane = crop.height * crop.width
        if cropIn.count < channels * cropPlane { cropIn = FloatBuffer(count: channels * cropPlane) }
        let source = table[input.slot]
        for c in 0 ..< channels {
            for y in 0 ..< crop.height {
                (cropIn.pointer + c * cropPlane + y * crop.width)
                    .update(from: source + c * height * width + (y0 + y) * width + x0, count: crop.width)
            }
        }
        let outHeight = outRows.count, outWidth = outColumns.count
        let outPlane = outHeight * outWidth
        if cropOut.count < g.outChannels * outPlane { cropOut = FloatBuffer(count: g.outChannels * outPlane) }
        kernel.run(input: cropIn.pointer, output: cropOut.pointer, batch: 1)
        let destination = table[output.slot]
        for k in 0 ..< g.outChannels {
            for y in 0 ..< outHeight {
                (destination + k * producedHeight * producedWidth + (outRows.lowerBound + y) * producedWidth + outColumns.lowerBound)
                    .update(from: cropOut.pointer + k * outPlane + y * outWidth, count: outWidth)
            }
        }
        return [0 ..< 1, 0 ..< g.outChannels, outRows, outColumns]
    }

    /// Steps `index` to the next element of `box` over its first `axes` axes, the last of
    /// them fastest (an odometer); false after the last element.
    private static func advance(_ index: inout [Int], within box: Box, axes: Int) -> Bool {
        var a = axes - 1
        while a >= 0 {
            index[a] += 1
            if index[a] < box[a].upperBound { return true }
            index[a] = box[a].lowerBound
            a -= 1
        }
        return false
    }

    private static func floorDiv(_ a: Int, _ b: Int) -> Int { a >= 0 ? a / b : -((-a + b - 1) / b) }
    private static func ceilDiv(_ a: Int, _ b: Int) -> Int { -floorDiv(-a, b) }
}
