/// An image model as a coalition game over image segments. The image is preprocessed once
/// into the model's input tensor (as for classification); a coalition's input keeps its
/// segments' pixels and gives every other pixel the masker's value; its value is the
/// model's first output (e.g. class probabilities).
public final class ImageGame: CoalitionGame {
    public enum Masker: Sendable, Equatable {
        /// The input's mean value per channel.
        case mean
        /// A box blur of the input, `radius` pixels each way (the box is cut at the
        /// borders and averages the pixels inside).
        case blur(radius: Int)
    }

    public let playerCount: Int
    public private(set) var outputCount = 0
    public let preferredBatch: Int

    private let session: NetworkSession
    private let image: FloatBuffer
    private let background: FloatBuffer
    /// Segment of each model-input pixel.
    private let pixelSegment: [Int32]
    private let shape: [Int]
    private let channels: Int
    private let channelsLast: Bool

    /// `tensor`: the preprocessed image, `shape` (batch 1) from `input.shape(...)`.
    public init(session: NetworkSession, input: ImageInput, tensor: UnsafeBufferPointer<Float>, shape: [Int],
                segments: ImageSegments, masker: Masker) throws(MedInferError) {
        self.session = session
        self.shape = shape
        channels = input.channels
        channelsLast = input.layout == .nhwc
        let (height, width) = channelsLast ? (shape[1], shape[2]) : (shape[2], shape[3])
        guard tensor.count == height * width * channels else { throw .internal("image tensor of \(tensor.count) values for \(shape)") }
        image = FloatBuffer(tensor)
        pixelSegment = segments.resampled(height: height, width: width)
        playerCount = segments.count
        background = FloatBuffer(count: tensor.count)
        let pixelStride = channelsLast ? channels : 1, channelStride = channelsLast ? 1 : height * width
        for c in 0 ..< channels {
            let plane = image.pointer + c * channelStride, out = background.pointer + c * channelStride
            switch masker {
            case .mean:
                var sum = 0.0
                for p in 0 ..< height * width { sum += Double(plane[p * pixelStride]) }
                let mean = Float(sum / Double(height * width))
                for p in 0 ..< height * width { out[p * pixelStride] = mean }
            case .blur(let radius):
                Self.boxBlur(plane, out, width: width, height: height, stride: pixelStride, radius: radius)
            }
        }
        // Images are large: a few per run keeps the network's tensors in the tens of MB.
        // (A model that fixes its batch size takes one image at a time.)
        if case .fixed? = session.model.inputs[0].dims?.first {
            preferredBatch = 1
        } else {
            preferredBatch = max(1, min(64, (1 << 20) / max(1, tensor.count)))
        }
        outputCount = SequenceGame.firstOutputCount(try session.plan(for: [shape]))
    }

    /// Separable box mean with running sums, cut at the borders.
    private static func boxBlur(_ source: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, width: Int, height: Int,
                                stride: Int, radius: Int) {
        var rows = [Double](repeating: 0, count: width * height)
        var prefix = [Double](repeating: 0, count: max(width, height) + 1)
        for y in 0 ..< height {
            for x in 0 ..< width { prefix[x + 1] = prefix[x] + Double(source[(y * width + x) * stride]) }
            for x in 0 ..< width {
                let lo = max(0, x - radius), hi = min(width, x + radius + 1)
                rows[y * width + x] = (prefix[hi] - prefix[lo]) / Double(hi - lo)
            }
        }
        for x in 0 ..< width {
            for y in 0 ..< height { prefix[y + 1] = prefix[y] + rows[y * width + x] }
            for y in 0 ..< height {
                let lo = max(0, y - radius), hi = min(height, y + radius + 1)
                out[(y * width + x) * stride] = Float((prefix[hi] - prefix[lo]) / Double(hi - lo))
            }
        }
    }

    public func evaluate(members: UnsafePointer<UInt8>, count: Int, values: UnsafeMutablePointer<Double>) throws(MedInferError) {
        let elements = image.count, pixels = pixelSegment.count
        let batch = FloatBuffer(count: count * elements)
        for n in 0 ..< count {
            let member = members + n * playerCount, out = batch.pointer + n * elements
            if channelsLast {
                for p in 0 ..< pixels {
                    let source = member[Int(pixelSegment[p])] != 0 ? image.pointer : background.pointer
                    for c in 0 ..< channels { out[p * channels + c] = source[p * channels + c] }
                }
            } else {
                for c in 0 ..< channels {
                    for p in 0 ..< pixels {
                        let source = member[Int(pixelSegment[p])] != 0 ? image.pointer : background.pointer
                        out[c * pixels + p] = source[c * pixels + p]
                    }
                }
            }
        }
        var batchShape = shape
        batchShape[0] = count
        let plan = try session.plan(for: [batchShape])
        let k = outputCount
        let outputs = FloatBuffer(count: count * k)
        try session.run(plan: plan, inputs: [batch.readOnly], firstOutput: outputs.pointer)
        for i in 0 ..< count * k { values[i] = Double(outputs[i]) }
    }
}
