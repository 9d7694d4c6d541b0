import Foundation
import XCTest
@testable import MedInferCore

/// RegionalExecution (Networks/RegionalExecution.swift): after a change to a box of the
/// input, the recomputed output must equal a whole run of the network on the new input.
/// The seed CNN (skin_cnn.onnx on a 257 x 333 input: its own Resize to 300 x 300, a
/// transpose, Winograd convolutions with fused ReLU and pool, the dense head) and a
/// parity fixture whose convolution has groups, strides, dilations and asymmetric pads
/// followed by a padded max pool (the crop arithmetic's corner cases).
final class RegionalExecutionTests: XCTestCase {
    static let models = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("examples/models")

    static let fixtures = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/onnx")

    /// A deterministic input in 0...scale: a gradient plus noise.
    func values(_ count: Int, seed: UInt64, scale: Float) -> [Float] {
        var state = seed
        return (0 ..< count).map { i in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let smooth = Float(i % 97) / 97
            return scale * (0.7 * smooth + 0.3 * Float(state >> 40) / Float(1 << 24))
        }
    }

    func wholeRun(_ model: NetworkModel, _ input: [Float], shape: [Int]) throws -> [Float] {
        let session = NetworkSession(model: model)
        let count = try session.outputShapes(inputShapes: [shape])[0].reduce(1, *)
        var out = [Float](repeating: .nan, count: count)
        try input.withUnsafeBufferPointer { i in
            try out.withUnsafeMutableBufferPointer { o in
                try session.run(plan: session.plan(for: [shape]), inputs: [i.baseAddress!], firstOutput: o.baseAddress!)
            }
        }
        return out
    }

    /// Changes `boxes` of the input one after another (each change stays, as in an
    /// explanation's chain of coalitions); after each, regional output = whole run.
    func check(_ path: String, shape: [Int], boxes: [[Range<Int>]], scale: Float) throws {
        let model = try NetworkModel(path: path)
        let network = try XCTUnwrap(try RegionalExecution(model: model, shape: shape), "\(path): no regional plan")
        let count = shape.reduce(1, *)
        let first = values(count, seed: 1, scale: scale), second = values(count, seed: 2, scale: scale)
        network.input.pointer.update(from: first, count: count)
        network.runAll()
        var current = first
        var strides = [Int](repeating: 1, count: shape.count)
        for a in stride(from: shape.count - 2, through: 0, by: -1) { strides[a] = strides[a + 1] * shape[a + 1] }
        var got = [Float](repeating: .nan, count: try wholeRun(model, first, shape: shape).count)
        for (step, box) in boxes.enumerated() {
            for i in 0 ..< count {
                let inside = box.indices.allSatisfy { a in box[a].contains(i / strides[a] % shape[a]) }
                if inside {
                    current[i] = step % 2 == 0 ? second[i] : first[i] * 0.5
                    network.input.pointer[i] = current[i]
                }
            }
            network.update(changed: box)
            got.withUnsafeMutableBufferPointer { network.copyFirstOutput(to: $0.baseAddress!) }
            let expected = try wholeRun(model, current, shape: shape)
            let difference = zip(got, expected).map { abs($0 - $1) }.max() ?? .infinity
            XCTAssertLessThanOrEqual(difference, 2e-6, "\(path): box \(box): regional vs whole run")
        }
    }

    func testTheSeedCNNThroughItsOwnResize() throws {
        // Corner, a thin column at the right edge, the middle (NHWC boxes).
        try check(Self.models.appendingPathComponent("skin_cnn.onnx").path, shape: [1, 257, 333, 3],
                  boxes: [[0 ..< 1, 0 ..< 37, 0 ..< 37, 0 ..< 3], [0 ..< 1, 0 ..< 257, 330 ..< 333, 0 ..< 3],
                          [0 ..< 1, 100 ..< 141, 120 ..< 160, 0 ..< 3]],
                  scale: 255)
    }

    func testGroupedStridedDilatedPaddedConvolutionAndPool() throws {
        // X [1, 4, 9, 11] NCHW: every single pixel, then rows, columns and blocks.
        var boxes: [[Range<Int>]] = []
        for y in 0 ..< 9 { for x in 0 ..< 11 { boxes.append([0 ..< 1, 0 ..< 4, y ..< y + 1, x ..< x + 1]) } }
        boxes += [[0 ..< 1, 0 ..< 4, 0 ..< 9, 3 ..< 5], [0 ..< 1, 0 ..< 4, 7 ..< 9, 0 ..< 11],
                  [0 ..< 1, 0 ..< 4, 2 ..< 6, 4 ..< 9]]
        try check(Self.fixtures.appendingPathComponent("conv_group_dilation.onnx").path, shape: [1, 4, 9, 11],
                  boxes: boxes, scale: 2)
    }

    func testNetworksWithoutConvolutionsAreNotRegional() throws {
        let model = try NetworkModel(path: Self.models.appendingPathComponent("icu_lstm.onnx").path)
        XCTAssertNil(try RegionalExecution(model: model, shape: [1, 48, 8]))
    }
}
