import Foundation
import XCTest
@testable import MedInferCore

/// What the planner makes of the seed CNN's Keras export (Networks/PlanBuilder.swift,
/// Operators/ResizeOps.swift): the NHWC -> NCHW transpose in front of the in-model resize
/// is done by the resize itself, and height and width are resized together, so a fresh
/// process's first image faults in no memory for either intermediate.
final class PlanLayoutTests: XCTestCase {
    static let model = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("examples/models/skin_cnn.onnx")

    func testResizeReadsTheImageThroughItsTranspose() throws {
        let model = try NetworkModel(path: Self.model.path)
        let plan = try NetworkSession(model: model).plan(for: [[1, 450, 600, 3]])
        XCTAssertFalse(plan.steps.contains { $0 is TransposeStep && ($0 as! TransposeStep).permutation == [0, 3, 1, 2] },
                       "the input transpose should be done by the resize")
        let resize = try XCTUnwrap(plan.steps.first as? ResizeStep)
        XCTAssertEqual(resize.plane?.sourceInterleaved, true)
    }

    /// The resize writes the first convolution's padded input and each convolution the
    /// next one's, so no image-sized tensor is left in the arena; the result is the one
    /// the plan computes with every tensor in the arena, bit for bit.
    func testLayersWriteStraightIntoTheNextLayersInput() throws {
        let model = try NetworkModel(path: Self.model.path)
        let shape = [1, 450, 600, 3]
        let chained = try GraphPlanner(model: model).plan(inputShapes: [shape])
        let planner = GraphPlanner(model: model)
        planner.builder.chainsLayers = false
        let plain = try planner.plan(inputShapes: [shape])

        let resize = try XCTUnwrap(chained.steps.first as? ResizeStep)
        XCTAssertNotNil(resize.targetBuffer, "the resize should write into the first convolution's padded input")
        let convolutions = chained.steps.compactMap { ($0 as? ConvStep)?.kernel as? WinogradConv3x3 }
        XCTAssertEqual(convolutions.count, 6)
        XCTAssertTrue(convolutions.allSatisfy(\.inputPrepadded))
        XCTAssertEqual(convolutions.map { $0.outputBuffer != nil }, [true, true, true, true, true, false])
        // Only the last convolution's output (64 x 2 x 2) and the dense layers' remain;
        // without chaining the first two convolutions' pooled outputs (32 x 149 x 149 and
        // 64 x 73 x 73) are live together.
        XCTAssertLessThan(chained.arenaFloats, 4096)
        XCTAssertEqual(plain.arenaFloats, 32 * 149 * 149 + 64 * 73 * 73)

        let image: [Float] = (0 ..< 450 * 600 * 3).map { (i: Int) -> Float in Float((i * 37 + i / 1800) % 256) }
        var got = [Float](repeating: .nan, count: 5), want = got
        let session = NetworkSession(model: model)
        try image.withUnsafeBufferPointer { x in
            try got.withUnsafeMutableBufferPointer { out in
                _ = try session.run(plan: chained, inputs: [x.baseAddress!], outputs: [out.baseAddress!])
            }
            try want.withUnsafeMutableBufferPointer { out in
                _ = try session.run(plan: plain, inputs: [x.baseAddress!], outputs: [out.baseAddress!])
            }
        }
        XCTAssertEqual(got, want)
        XCTAssertEqual(got.reduce(0, +), 1, accuracy: 1e-5)
    }

    func testRegionalPlansKeepOnePassPerAxis() throws {
        let model = try NetworkModel(path: Self.model.path)
        let plan = try model.plan(inputShapes: [[1, 450, 600, 3]], mode: .plain, retainingAll: true)
        let resize = try XCTUnwrap(plan.steps.compactMap { $0 as? ResizeStep }.first)
        XCTAssertNil(resize.plane)
        XCTAssertEqual(resize.passes.count, 2)
    }
}
