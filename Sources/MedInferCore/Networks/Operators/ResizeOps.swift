/// Resize (opset 10+: scales or sizes inputs; 11+: roi/scales/sizes) and Upsample, in
/// `nearest` and `linear` modes with every coordinate transformation mode exporters
/// write. Axes are resampled one at a time; unchanged axes cost nothing.

final class ResizeStep: NetworkStep {
    /// One pass per resized axis: [outer, length, inner] -> [outer, newLength, inner].
    struct Pass { var outer: Int, inputLength: Int, inner: Int, resampling: AxisResampling, source: Int, destination: Int }
    /// Two adjacent axes resized together, row by row (`Resize.plane`): an image's height
    /// and width without an intermediate tensor.
    struct PlanePass {
        var outer: Int, rows: Int, columns: Int, inner: Int
        var vertical: AxisResampling, horizontal: AxisResampling
        var source: Int, destination: Int
        /// The source is the NHWC image in front of an NCHW transpose that this pass does
        /// itself (`inner` is then the channel count).
        var sourceInterleaved = false
    }
    let passes: [Pass]
    let plane: PlanePass?
    /// Where the plane pass writes instead of its destination slot: the next Winograd
    /// layer's padded input (set while planning; see `canWriteIntoPadded`).
    private(set) var targetBuffer: GemmWorkspace?
    private(set) var targetLayout: PaddedInputLayout?

    func writeOutput(into next: PaddedInput) {
        targetBuffer = next.buffer
        targetLayout = next.layout
    }
    /// One blended source row of `plane` (this step's own: a plan runs on one thread).
    private let row: UnsafeMutablePointer<Float>?

    init(passes: [Pass]) { self.passes = passes; plane = nil; row = nil }

    init(plane: PlanePass) {
        passes = []
        self.plane = plane
        // A blended source row, then (writing into a padded input) one resampled row.
        row = .allocate(capacity: max(1, plane.columns * plane.inner + plane.horizontal.index0.count))
    }

    deinit { row?.deallocate() }

    /// The slot the step writes.
    var destination: Int { plane?.destination ?? passes.last?.destination ?? -1 }

    /// Whether the output is one image's planes resized in one pass, which a Winograd
    /// layer's padded input can take directly.
    var canWriteIntoPadded: Bool {
        guard let p = plane, passes.isEmpty else { return false }
        return p.sourceInterleaved ? p.outer == 1 : p.inner == 1
    }

    func run(_ slots: UnsafeMutablePointer<UnsafeMutablePointer<Float>>) {
        if let p = plane, let row {
            let target = targetLayout
            let output = target.flatMap { layout in targetBuffer?.reserve(layout.count) } ?? slots[p.destination]
            if p.sourceInterleaved {
                Resize.planeFromInterleaved(slots[p.source], output, outer: p.outer, rows: p.rows,
                                            columns: p.columns, channels: p.inner, vertical: p.vertical,
                                            horizontal: p.horizontal, row: row, into: target)
            } else {
                Resize.plane(slots[p.source], output, outer: p.outer, rows: p.rows, columns: p.columns,
                             inner: p.inner, vertical: p.vertical, horizontal: p.horizontal, row: row, into: target)
            }
        }
        for p in passes {
            Resize.axis(slots[p.source], slots[p.destination], outer: p.outer, inputLength: p.inputLength,
                        inner: p.inner, resampling: p.resampling)
        }
    }
}

extension Operators {
    static func resize(_ c: NodeContext) throws(MedInferError) -> [PlanValue] {
        let x = try c.input(0)
        let rank = x.shape.count
        let modeName = try c.string("mode", "nearest")
        let mode: ResizeMode
        switch modeName {
        case "nearest":
            let rounding = try c.string("nearest_mode", "round_prefer_floor")
            guard let r = ResizeNearestMode(rawValue: rounding) else { throw .unsupported("nearest_mode '\(rounding)'") }
            mode = .nearest(r)
        case "linear", "bilinear": mode = .linear
        default: throw .unsupported("mode '\(modeName)' (nearest and linear are supported)")
        }
        let isUpsample = c.node.opType == "Upsample" || c.opset < 11
        let coordinateName = isUpsample ? "asymmetric" : try c.string("coordinate_transformation_mode", "half_pixel")
        guard let coordinates = ResizeCoordinateMode(rawValue: coordinateName) else {
            throw .unsupported("coordinate_transformation_mode '\(coordinateName)'")
        }
        if try c.int("antialias", 0) != 0 { throw .unsupported("antialias 1") }
        if (try c.ints("axes")) != nil { throw .unsupported("the 'axes' attribute") }
        if try c.string("keep_aspect_ratio_policy", "stretch") != "stretch" { throw .unsupported("keep_aspect_ratio_policy") }

        // Inputs: opset 10 / Upsample (X, scales); opset 11+ (X, roi, scales, sizes).
        let scalesIndex = isUpsample ? 1 : 2
        var scales: [Float]?
        if c.node.opType == "Upsample", let attr = c.attribute("scales"), case .floats(let f) = attr { scales = f }
        if let s = try c.constantInput(scalesIndex, "scales"), s.count > 0 { scales = s.floatValues }
        var sizes: [Int]?
        if !isUpsample, let s = try c.constantInput(3, "sizes"), s.count > 0 { sizes = s.intValues.map { Int(clamping: $0) } }
        var outShape = x.shape
        var axisScale = [Float?](repeating: 1, count: rank)
        if let sizes {
            guard sizes.count == rank, sizes.allSatisfy({ $0 >= 1 && $0 < (1 << 24) }) else {
                throw .shapeMismatch("sizes \(sizes) for input \(x.shape)")
            }
            outShape = sizes
            for a in 0 ..< rank { axisScale[a] = nil }
        } else if let scales {
            guard scales.count == rank, scales.allSatisfy({ $0 > 0 && $0.isFinite && $0 < 1e6 }) else {
                throw .shapeMismatch("scales \(scales) for input \(x.shape)")
            }
            axisScale = scales.map { $0 }
            for a in 0 ..< rank { outShape[a] = Int((Float(x.shape[a]) * scales[a]).rounded(.down)) }
        } else {
            throw .parse("neither scales nor sizes given")
        }
        if case .linear = mode {} else if coordinates == .tfHalfPixelForNN {} // both fine
        let changed = (0 ..< rank).filter { outShape[$0] != x.shape[$0] || (axisScale[$0] ?? 1) != 1 }
        if changed.isEmpty { return [x] }
        guard outShape.allSatisfy({ $0 > 0 }) else { throw .shapeMismatch("Resize to an empty shape \(outShape)") }
        let input = try c.builder.tensor(x)
        func resampling(_ axis: Int) -> AxisResampling {
            AxisResampling(inputLength: x.shape[axis], outputLength: outShape[axis], scale: axisScale[axis],
                           mode: mode, coordinates: coordinates)
        }
        // Height and width of an image together, unless every intermediate must stay
        // inspectable (regional re-runs recompute the passes box by box).
        if changed.count == 2, changed[1] == changed[0] + 1, !c.builder.retainAll {
            let (a, b) = (changed[0], changed[1])
            try c.builder.charge(12 * (outShape[a] + outShape[b]), for: "Resize to \(outShape)")
            let out = try c.newTensor(outShape)
            // An NHWC image transposed to NCHW just for this resize (Keras exports): read
            // the image itself and skip the transpose (its copy and its memory).
            if rank == 4, a == 2, c.planner.onlyShapesRead(c.node.inputs[0], besides: c.index),
               let transpose = c.builder.steps.last as? TransposeStep, transpose.destination == input.slot,
               transpose.permutation == [0, 3, 1, 2], c.builder.withdrawLastStep(writing: input.slot) != nil {
                let image = RuntimeTensor(slot: transpose.source, shape: transpose.shape)
                let plane = ResizeStep.PlanePass(outer: x.shape[0], rows: x.shape[2], columns: x.shape[3], inner: x.shape[1],
                                                 vertical: resampling(2), horizontal: resampling(3),
                                                 source: image.slot, destination: out.slot, sourceInterleaved: true)
                return try c.emit(ResizeStep(plane: plane), reading: [image], writing: [out])
            }
            let plane = ResizeStep.PlanePass(outer: x.shape[..<a].reduce(1, *), rows: x.shape[a], columns: x.shape[b],
                                             inner: x.shape[(b + 1)...].reduce(1, *), vertical: resampling(a),
                                             horizontal: resampling(b), source: input.slot, destination: out.slot)
            return try c.emit(ResizeStep(plane: plane), reading: [input], writing: [out])
        }
        var passes: [ResizeStep.Pass] = []
        var current = input
        var tensors: [RuntimeTensor] = []
        for (i, axis) in changed.enumerated() {
            var shape = current.shape
            shape[axis] = outShape[axis]
            let next = try c.newTensor(shape)
            tensors.append(next)
            try c.builder.charge(12 * outShape[axis], for: "Resize to \(outShape)")
            let r = AxisResampling(inputLength: current.shape[axis], outputLength: outShape[axis], scale: axisScale[axis],
                                   mode: mode, coordinates: coordinates)
            passes.append(.init(outer: current.shape[..<axis].reduce(1, *), inputLength: current.shape[axis],
                                inner: current.shape[(axis + 1)...].reduce(1, *), resampling: r,
                                source: current.slot, destination: next.slot))
            current = next
            _ = i
        }
        // Intermediate tensors must outlive the step: it reads and writes them all.
        return try c.emit(ResizeStep(passes: passes), reading: [input] + tensors.dropLast(), writing: tensors).suffix(1).map { $0 }
    }
}
