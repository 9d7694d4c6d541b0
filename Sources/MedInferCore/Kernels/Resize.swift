#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// ONNX Resize, one axis at a time: n-linear interpolation is separable, so resizing
/// axis by axis equals the n-dimensional formula (up to float rounding order). The
/// coordinate mapping and nearest rounding follow the ONNX operator definition.
enum ResizeCoordinateMode: String, Sendable {
    case halfPixel = "half_pixel"
    case pytorchHalfPixel = "pytorch_half_pixel"
    case alignCorners = "align_corners"
    case asymmetric = "asymmetric"
    case tfHalfPixelForNN = "tf_half_pixel_for_nn"
    case halfPixelSymmetric = "half_pixel_symmetric"
}

enum ResizeNearestMode: String, Sendable {
    case roundPreferFloor = "round_prefer_floor"
    case roundPreferCeil = "round_prefer_ceil"
    case floor, ceil
}

enum ResizeMode: Sendable, Equatable {
    case nearest(ResizeNearestMode)
    case linear
}

/// For each output index along one axis: the two source indices and the weight of the
/// second (linear), or one source index (nearest, weight 0).
struct AxisResampling: Equatable {
    var index0: [Int32]
    var index1: [Int32]
    var weight1: [Float]

    /// `scale` is the given scale, or nil when the output size was given. Matching
    /// onnxruntime's nearest-pixel ties needs its arithmetic: with a given (float) scale
    /// the source coordinate is computed in Float (1.5 / 0.3 rounds to 5.0 exactly); with
    /// a given size, in Double from output/input (7 -> 4 asymmetric: 2 / (4/7) is 3.5,
    /// where Float gives 3.4999998 and rounds the other way).
    init(inputLength: Int, outputLength: Int, scale: Float?, mode: ResizeMode,
         coordinates: ResizeCoordinateMode) {
        index0 = []; index1 = []; weight1 = []
        index0.reserveCapacity(outputLength)
        for x in 0 ..< outputLength {
            let original: Double
            if let scale {
                original = Double(AxisResampling.sourceCoordinate(Float(x), inputLength: inputLength,
                                                                  outputLength: outputLength, scale: scale,
                                                                  mode: coordinates))
            } else {
                original = AxisResampling.sourceCoordinate(Double(x), inputLength: inputLength, outputLength: outputLength,
                                                           scale: Double(outputLength) / Double(inputLength),
                                                           mode: coordinates)
            }
            switch mode {
            case .nearest(let rounding):
                var i: Double
                switch rounding {
                case .roundPreferFloor: i = original == original.rounded(.down) + 0.5 ? original.rounded(.down) : original.rounded()
                case .roundPreferCeil: i = original == original.rounded(.down) + 0.5 ? original.rounded(.up) : original.rounded()
                case .floor: i = original.rounded(.down)
                case .ceil: i = original.rounded(.up)
                }
                let clamped = Int32(Swift.max(0, Swift.min(Double(inputLength - 1), i)))
                index0.append(clamped); index1.append(clamped); weight1.append(0)
            case .linear:
                let x = Swift.max(0, Swift.min(original, Double(inputLength - 1)))
                let i0 = Int(x.rounded(.down))
                let i1 = Swift.min(i0 + 1, inputLength - 1)
                index0.append(Int32(i0)); index1.append(Int32(i1)); weight1.append(Float(x - Double(i0)))
            }
        }
    }

    /// The three tables as buffers, for the kernels' inner loops (no bounds checks).
    @inline(__always)
    func withTables<R>(_ body: (UnsafeBufferPointer<Int32>, UnsafeBufferPointer<Int32>, UnsafeBufferPointer<Float>) -> R) -> R {
        index0.withUnsafeBufferPointer { i0 in
            index1.withUnsafeBufferPointer { i1 in
                weight1.withUnsafeBufferPointer { w1 in body(i0, i1, w1) }
            }
        }
    }

    static func sourceCoordinate<T: BinaryFloatingPoint>(_ x: T, inputLength: Int, outputLength: Int, scale: T,
                                                         mode: ResizeCoordinateMode) -> T {
        switch mode {
        case .halfPixel: return (x + 0.5) / scale - 0.5
        case .halfPixelSymmetric:
            let adjustment = T(outputLength) / (scale * T(inputLength))
            let center = T(inputLength) / 2
            let offset = center * (1 - adjustment)
            return offset + (x + 0.5) / scale - 0.5
        case .pytorchHalfPixel: return outputLength > 1 ? (x + 0.5) / scale - 0.5 : 0
        case .alignCorners:
            return outputLength == 1 ? 0 : x * T(inputLength - 1) / T(outputLength - 1)
        case .asymmetric: return x / scale
        case .tfHalfPixelForNN: return (x + 0.5) / scale
        }
    }
}

enum Resize {
    /// Resamples two adjacent axes of a tensor viewed as [outer, rows, columns, inner] one
    /// output row at a time: two source rows blended into `row` (columns × inner floats),
    /// then resampled along the columns into the output. Same arithmetic as `axis` on
    /// the rows and then on the columns, without the intermediate tensor (for a 600x450
    /// image resized to 300x300, 2.2 MB that a fresh process had to fault in).
    /// With `layout` (planes, `inner` 1), plane o of the output is written into plane o of
    /// a Winograd layer's padded input instead of `output`, with the same arithmetic; `row`
    /// then holds columns · inner + newColumns floats.
    static func plane(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, outer: Int,
                      rows: Int, columns: Int, inner: Int, vertical v: AxisResampling, horizontal h: AxisResampling,
                      row: UnsafeMutablePointer<Float>, into layout: PaddedInputLayout? = nil) {
        let rowLength = columns * inner
        let outRows = v.index0.count, outRowLength = h.index0.count * inner
        for o in 0 ..< outer {
            let src = input + o * rows * rowLength
            if let layout {
                let dst = output + o * layout.planeFloats
                for y in 0 ..< outRows {
                    blendRows(src, rowLength: rowLength, v, y, into: row)
                    resampleColumns(UnsafePointer(row), stride: 1, h, into: dst, layout, y: y, resampled: row + rowLength)
                }
                continue
            }
            let dst = output + o * outRows * outRowLength
            for y in 0 ..< outRows {
                blendRows(src, rowLength: rowLength, v, y, into: row)
                axis(row, dst + y * outRowLength, outer: 1, inputLength: columns, inner: inner, resampling: h)
            }
        }
    }

    /// Row y of a plane resampled along its columns (source elements `stride` apart) into a
    /// padded input's phase-split row, through `resampled` (a row's floats): the arithmetic
    /// of `axis` for one row.
    @inline(__always)
    private static func resampleColumns(_ line: UnsafePointer<Float>, stride: Int, _ h: AxisResampling,
                                        into plane: UnsafeMutablePointer<Float>, _ layout: PaddedInputLayout, y: Int,
                                        resampled: UnsafeMutablePointer<Float>) {
        let outColumns = h.index0.count
        h.withTables { i0, i1, w1 in
            for x in 0 ..< outColumns {
                let w = w1[x]
                resampled[x] = line[Int(i0[x]) * stride] * (1 - w) + line[Int(i1[x]) * stride] * w
            }
        }
        PaddedInputLayout.splitRow(resampled, count: outColumns, into: plane + (y + layout.padTop) * layout.rowFloats,
                                   padLeft: layout.padLeft, phaseLength: layout.phaseLength)
    }

    /// `plane` for an image stored [outer, rows, columns, channels] (NHWC) whose output is
    /// [outer, channels, newRows, newColumns] (NCHW): the layout transpose in front of a
    /// resize done by the resize itself. Each blended row holds every channel; the column
    /// pass picks one channel at a time. Same arithmetic as transposing first.
    /// With `layout` (`outer` 1), channel c goes to plane c of a Winograd layer's padded
    /// input instead of `output`, with the same arithmetic; `row` then holds
    /// columns · channels + newColumns floats.
    static func planeFromInterleaved(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, outer: Int,
                                     rows: Int, columns: Int, channels: Int, vertical v: AxisResampling,
                                     horizontal h: AxisResampling, row: UnsafeMutablePointer<Float>,
                                     into layout: PaddedInputLayout? = nil) {
        let rowLength = columns * channels
        let outRows = v.index0.count, outColumns = h.index0.count
        let outPlane = outRows * outColumns
        if let layout {
            for y in 0 ..< outRows {
                blendRows(input, rowLength: rowLength, v, y, into: row)
                for c in 0 ..< channels {
                    resampleColumns(UnsafePointer(row + c), stride: channels, h, into: output + c * layout.planeFloats, layout,
                                    y: y, resampled: row + rowLength)
                }
            }
            return
        }
        h.withTables { i0, i1, w1 in
            for o in 0 ..< outer {
                let src = input + o * rows * rowLength
                let image = output + o * channels * outPlane
                for y in 0 ..< outRows {
                    blendRows(src, rowLength: rowLength, v, y, into: row)
                    for c in 0 ..< channels {
                        let dst = image + c * outPlane + y * outColumns
                        let line = UnsafePointer(row + c)
                        for x in 0 ..< outColumns {
                            let w = w1[x]
                            dst[x] = line[Int(i0[x]) * channels] * (1 - w) + line[Int(i1[x]) * channels] * w
                        }
                    }
                }
            }
        }
    }

    /// Output row y of a vertical resampling: source rows blended (copied at weight 0,
    /// as `axis` does) into `row`.
    @inline(__always)
    private static func blendRows(_ src: UnsafePointer<Float>, rowLength: Int, _ v: AxisResampling, _ y: Int,
                                  into row: UnsafeMutablePointer<Float>) {
        let a = src + Int(v.index0[y]) * rowLength, b = src + Int(v.index1[y]) * rowLength
        let w = v.weight1[y]
        if w == 0 {
            row.update(from: a, count: rowLength)
            return
        }
        let wa = 1 - w
        var k = 0
        while k + 8 <= rowLength {
            let x = UnsafeRawPointer(a + k).loadUnaligned(as: SIMD8<Float>.self)
            let z = UnsafeRawPointer(b + k).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(row + k).storeBytes(of: x * wa + z * w, as: SIMD8<Float>.self)
            k += 8
        }
        while k < rowLength { row[k] = a[k] * wa + b[k] * w; k += 1 }
    }

    /// Resamples axis `axis` of a tensor viewed as [outer, length, inner].
    static func axis(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>,
                     outer: Int, inputLength: Int, inner: Int, resampling r: AxisResampling) {
        let outputLength = r.index0.count
        r.withTables { i0, i1, w1 in
            for o in 0 ..< outer {
                let src = input + o * inputLength * inner
                let dst = output + o * outputLength * inner
                if inner == 1 {
                    // The last axis of NCHW: a gather and a blend per output.
                    for x in 0 ..< outputLength {
                        let w = w1[x]
                        dst[x] = src[Int(i0[x])] * (1 - w) + src[Int(i1[x])] * w
                    }
                    continue
                }
                if inner == 3 {
                    // Interleaved RGB rows (NHWC images): one pixel per step.
                    for x in 0 ..< outputLength {
                        let a = src + Int(i0[x]) * 3, b = src + Int(i1[x]) * 3
                        let w = w1[x], wa = 1 - w
                        let d = dst + x * 3
                        d[0] = a[0] * wa + b[0] * w
                        d[1] = a[1] * wa + b[1] * w
                        d[2] = a[2] * wa + b[2] * w
                    }
                    continue
                }
                for x in 0 ..< outputLength {
                    let a = src + Int(i0[x]) * inner
                    let b = src + Int(i1[x]) * inner
                    let w = w1[x]
                    let d = dst + x * inner
                    if w == 0 {
                        d.update(from: a, count: inner)
                    } else {
                        let wa = 1 - w
                        for i in 0 ..< inner { d[i] = a[i] * wa + b[i] * w }
                    }
                }
            }
        }
    }
}
