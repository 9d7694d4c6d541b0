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
        // The arena's peak is the first two convolutions' pooled outputs (32 x 149 x 149
        // and 64 x 73 x 73) live together: nothing of 600 x 450 (it was 1.62 M floats).
        XCTAssertEqual(plan.arenaFloats, 32 * 149 * 149 + 64 * 73 * 73)
    }

    func testRegionalPlansKeepOnePassPerAxis() throws {
        let model = try NetworkModel(path: Self.model.path)
        let plan = try model.plan(inputShapes: [[1, 450, 600, 3]], mode: .plain, retainingAll: true)
        let resize = try XCTUnwrap(plan.steps.compactMap { $0 as? ResizeStep }.first)
        XCTAssertNil(resize.plane)
        XCTAssertEqual(resize.passes.count, 2)
    }
}
