#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

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
    private let height: Int, width: Int
    /// Bounding box (rows, columns) of each segment's pixels.
    private let segmentBoxes: [(rows: Range<Int>, columns: Range<Int>)]
    /// One image at a time through a network that keeps its tensors and recomputes only
    /// what the segments that changed since the previous coalition reach (nil: not a
    /// convolutional network, or turned off with MEDINFER_IMAGE_REGIONAL=0).
    private var regional: RegionalExecution?
    private var regionalTried = false
    /// The coalition the regional network holds.
    private var held: [UInt8] = []

    /// `tensor`: the preprocessed image, `shape` (batch 1) from `input.shape(...)`.
    public init(session: NetworkSession, input: ImageInput, tensor: UnsafeBufferPointer<Float>, shape: [Int],
                segments: ImageSegments, masker: Masker) throws(MedInferError) {
        self.session = session
        self.shape = shape
        channels = input.channels
        channelsLast = input.layout == .nhwc
        let (height, width) = channelsLast ? (shape[1], shape[2]) : (shape[2], shape[3])
        guard tensor.count == height * width * channels else { throw .internal("image tensor of \(tensor.count) values for \(shape)") }
        self.height = height
        self.width = width
        image = FloatBuffer(tensor)
        pixelSegment = segments.resampled(height: height, width: width)
        playerCount = segments.count
        var boxes = [(rows: Range<Int>, columns: Range<Int>)](repeating: (0 ..< 0, 0 ..< 0), count: segments.count)
        for y in 0 ..< height {
            for x in 0 ..< width {
                let s = Int(pixelSegment[y * width + x])
                let b = boxes[s]
                boxes[s] = b.rows.isEmpty ? (y ..< y + 1, x ..< x + 1)
                    : (min(b.rows.lowerBound, y) ..< max(b.rows.upperBound, y + 1),
                       min(b.columns.lowerBound, x) ..< max(b.columns.upperBound, x + 1))
            }
        }
        segmentBoxes = boxes
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
        if !regionalTried {
            regionalTried = true
            // Small images run faster as whole batches (a 32x32 CNN: 21 ms batched, 43 ms
            // regionally, budget 2000); from about 200x200 pixels, or one image at a time
            // anyway, recomputing only what changed wins (300x300: 10x).
            let worthwhile = preferredBatch <= 8
            if worthwhile, getenv("MEDINFER_IMAGE_REGIONAL").map({ String(cString: $0) != "0" }) ?? true {
                regional = try RegionalExecution(model: session.model, shape: shape)
            }
        }
        if let regional {
            evaluateRegionally(regional, members: members, count: count, values: values)
            return
        }
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

    /// Coalition by coalition: the segments that differ from the coalition the network
    /// holds are written into its input and only what they reach is recomputed (a whole
    /// run when they cover over a third of the image).
    private func evaluateRegionally(_ network: RegionalExecution, members: UnsafePointer<UInt8>, count: Int,
                                    values: UnsafeMutablePointer<Double>) {
        let k = outputCount
        let output = FloatBuffer(count: k)
        for n in 0 ..< count {
            let member = members + n * playerCount
            var rows = 0 ..< 0, columns = 0 ..< 0
            var changed: [Int] = []
            if held.count == playerCount {
                for s in 0 ..< playerCount where member[s] != held[s] {
                    changed.append(s)
                    let b = segmentBoxes[s]
                    rows = rows.isEmpty ? b.rows : min(rows.lowerBound, b.rows.lowerBound) ..< max(rows.upperBound, b.rows.upperBound)
                    columns = columns.isEmpty ? b.columns
                        : min(columns.lowerBound, b.columns.lowerBound) ..< max(columns.upperBound, b.columns.upperBound)
                }
            }
            if held.count != playerCount || rows.count * columns.count * 3 > height * width {
                writePixels(member, rows: 0 ..< height, columns: 0 ..< width, into: network.input.pointer)
                held = Array(UnsafeBufferPointer(start: member, count: playerCount))
                network.runAll()
            } else if !changed.isEmpty {
                for s in changed {
                    writePixels(member, rows: segmentBoxes[s].rows, columns: segmentBoxes[s].columns, into: network.input.pointer)
                    held[s] = member[s]
                }
                network.update(changed: channelsLast ? [0 ..< 1, rows, columns, 0 ..< channels]
                                                     : [0 ..< 1, 0 ..< channels, rows, columns])
            }
            network.copyFirstOutput(to: output.pointer)
            for o in 0 ..< k { values[n * k + o] = Double(output[o]) }
        }
    }

    /// The coalition's input inside a box of pixels: its segments' pixels from the image,
    /// the others from the background.
    private func writePixels(_ member: UnsafePointer<UInt8>, rows: Range<Int>, columns: Range<Int>,
                             into input: UnsafeMutablePointer<Float>) {
        let pixels = height * width
        for y in rows {
            for x in columns {
                let p = y * width + x
                let source = member[Int(pixelSegment[p])] != 0 ? image.pointer : background.pointer
                if channelsLast {
                    for c in 0 ..< channels { input[p * channels + c] = source[p * channels + c] }
                } else {
                    for c in 0 ..< channels { input[c * pixels + p] = source[c * pixels + p] }
                }
            }
        }
    }
}
