/// Turns 8-bit camera pixels into the float tensor an image model expects.
///
/// The layout (NHWC or NCHW) and channel count come from the model's declared input.
/// When the model declares a fixed height and width, the image is resized to them with
/// bilinear interpolation on half-pixel centres (what Keras `Resizing` and
/// `tf.image.resize(..., "bilinear", antialias=False)` compute) and rescaled to [0, 1]
/// by multiplying with Float(1/255), as a Keras `Rescaling(1/255)` layer does. When the
/// model leaves height and width open, it carries its own resize-and-rescale block, so
/// it gets the raw 0-255 values at the image's own size.
public struct ImageInput {
    public enum PixelFormat: Int32, Sendable { case rgb = 1, rgba = 2, grey = 3 }

    public enum Layout: Sendable { case nhwc, nchw }

    public let layout: Layout
    public let channels: Int
    /// The size the model needs, or nil to keep the image's size (the model resizes).
    public let fixedSize: (height: Int, width: Int)?

    /// Reads the image conventions off a model's single input.
    public init(model: NetworkModel) throws(MedInferError) {
        guard model.inputs.count == 1, let dims = model.inputs[0].dims, dims.count == 4 else {
            throw .unsupported("an image model needs one input of rank 4 (NHWC or NCHW); this model's inputs are \(model.inputs.map { "\($0.name)\($0.dims.map(GraphPlanner.describe) ?? "[?]")" })")
        }
        func fixed(_ d: ONNXDimension) -> Int? { if case .fixed(let v) = d { return v } else { return nil } }
        if let c = fixed(dims[3]), c == 3 || c == 1 {
            layout = .nhwc; channels = c
            if let h = fixed(dims[1]), let w = fixed(dims[2]) { fixedSize = (h, w) } else { fixedSize = nil }
        } else if let c = fixed(dims[1]), c == 3 || c == 1 {
            layout = .nchw; channels = c
            if let h = fixed(dims[2]), let w = fixed(dims[3]) { fixedSize = (h, w) } else { fixedSize = nil }
        } else {
            throw .unsupported("cannot tell the channel axis of input \(GraphPlanner.describe(dims)): expected 1 or 3 channels first or last")
        }
        if let size = fixedSize, size.height < 1 || size.width < 1 {
            throw .unsupported("the model's input size \(size) is empty")
        }
    }

    /// The input shape for an image of the given size.
    public func shape(height: Int, width: Int) -> [Int] {
        let (h, w) = fixedSize ?? (height, width)
        return layout == .nhwc ? [1, h, w, channels] : [1, channels, h, w]
    }

    /// Writes the tensor for `pixels` into `out` (shape(height:width:) elements).
    public func fill(_ out: UnsafeMutablePointer<Float>, pixels: UnsafePointer<UInt8>, width: Int, height: Int,
                     stride: Int, format: PixelFormat) {
        let sourceChannels = format == .rgb ? 3 : (format == .rgba ? 4 : 1)
        let (outH, outW) = fixedSize ?? (height, width)
        let scale: Float = fixedSize == nil ? 1 : Float(1.0 / 255.0)
        let plane = outH * outW
        // Vertical and horizontal sampling positions, as in tf.image.resize (half-pixel).
        let ys = AxisResampling(inputLength: height, outputLength: outH, scale: nil,
                                mode: .linear, coordinates: .halfPixel)
        let xs = AxisResampling(inputLength: width, outputLength: outW, scale: nil,
                                mode: .linear, coordinates: .halfPixel)
        let resize = outH != height || outW != width
        var rgb = [Float](repeating: 0, count: 3)
        for y in 0 ..< outH {
            let r0 = pixels + Int(ys.index0[y]) * stride, r1 = pixels + Int(ys.index1[y]) * stride
            let wy = ys.weight1[y]
            for x in 0 ..< outW {
                let c0 = Int(xs.index0[x]) * sourceChannels, c1 = Int(xs.index1[x]) * sourceChannels
                let wx = xs.weight1[x]
                for ch in 0 ..< min(sourceChannels, 3) {
                    if resize {
                        let top = Float(r0[c0 + ch]) * (1 - wx) + Float(r0[c1 + ch]) * wx
                        let bottom = Float(r1[c0 + ch]) * (1 - wx) + Float(r1[c1 + ch]) * wx
                        rgb[ch] = top * (1 - wy) + bottom * wy
                    } else {
                        rgb[ch] = Float(r0[c0 + ch])
                    }
                }
                if sourceChannels == 1 { rgb[1] = rgb[0]; rgb[2] = rgb[0] }
                let pixel = y * outW + x
                if channels == 1 {
                    // ITU-R 601 luma, as tf.image.rgb_to_grayscale.
                    let grey = sourceChannels == 1 ? rgb[0] : 0.2989 * rgb[0] + 0.5870 * rgb[1] + 0.1140 * rgb[2]
                    out[pixel] = grey * scale
                } else if layout == .nhwc {
                    out[pixel * 3] = rgb[0] * scale; out[pixel * 3 + 1] = rgb[1] * scale; out[pixel * 3 + 2] = rgb[2] * scale
                } else {
                    out[pixel] = rgb[0] * scale; out[plane + pixel] = rgb[1] * scale; out[2 * plane + pixel] = rgb[2] * scale
                }
            }
        }
    }
}
