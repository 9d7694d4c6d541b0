/// Which segment (player) each pixel of an image belongs to: a regular grid, or the
/// caller's own segmentation (SLIC superpixels, a lesion mask), validated.
public struct ImageSegments: Sendable {
    public let width: Int, height: Int
    /// One label per image pixel, row-major, in 0 ..< count.
    public let labels: [Int32]
    public let count: Int

    public static let maxSegments = 1 << 16

    /// `rows x cols` cells; pixel (y, x) is in cell (y * rows / height, x * cols / width).
    public static func grid(rows: Int, cols: Int, width: Int, height: Int) throws(MedInferError) -> ImageSegments {
        guard rows >= 1, cols >= 1, rows <= height, cols <= width else {
            throw .invalidArgument("a segment grid of \(rows) rows x \(cols) columns does not fit an image of \(height) rows x \(width) columns (each cell needs a pixel)")
        }
        var labels = [Int32](repeating: 0, count: width * height)
        for y in 0 ..< height {
            let row = y * rows / height
            for x in 0 ..< width { labels[y * width + x] = Int32(row * cols + x * cols / width) }
        }
        return ImageSegments(width: width, height: height, labels: labels, count: rows * cols)
    }

    /// The caller's labels: every one in 0 ..< count and each label used by some pixel.
    public static func given(_ labels: UnsafeBufferPointer<Int32>, count: Int, width: Int, height: Int) throws(MedInferError) -> ImageSegments {
        guard count >= 1, count <= maxSegments else {
            throw .invalidArgument("segment_count \(count) is outside 1...\(maxSegments)")
        }
        guard labels.count == width * height else { throw .internal("\(labels.count) labels for \(width) x \(height) pixels") }
        var used = [Bool](repeating: false, count: count)
        for (i, label) in labels.enumerated() {
            guard label >= 0, Int(label) < count else {
                throw .invalidArgument("segment label \(label) of pixel (\(i % width), \(i / width)) is outside 0...\(count - 1)")
            }
            used[Int(label)] = true
        }
        if let unused = used.firstIndex(of: false) {
            throw .invalidArgument("segment \(unused) has no pixel; every label in 0...\(count - 1) must be used")
        }
        return ImageSegments(width: width, height: height, labels: Array(labels), count: count)
    }

    /// The label of each pixel of a `modelHeight x modelWidth` resampling of the image:
    /// the label of the image pixel nearest to the sample's centre.
    func resampled(height modelHeight: Int, width modelWidth: Int) -> [Int32] {
        if modelHeight == height && modelWidth == width { return labels }
        var out = [Int32](repeating: 0, count: modelHeight * modelWidth)
        for i in 0 ..< modelHeight {
            let y = min(height - 1, (2 * i + 1) * height / (2 * modelHeight))
            for j in 0 ..< modelWidth {
                let x = min(width - 1, (2 * j + 1) * width / (2 * modelWidth))
                out[i * modelWidth + j] = labels[y * width + x]
            }
        }
        return out
    }
}
