import Foundation
import XCTest
@testable import MedInferCore

/// The ICU sequence models (examples/models/icu_*.onnx: Keras LSTM, GRU as a tf2onnx
/// Loop, bidirectional LSTM, two-branch static + LSTM, torch-style fused GRU) against the
/// outputs onnxruntime computed for a small batch, stored in Tests/Fixtures/sequence
/// (made by make_fixtures.py there; the manifest format is described in that script).
final class SequenceFixtureTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/sequence")
    static let models = ["icu_lstm", "icu_gru", "icu_bilstm", "icu_two_branch", "icu_gru_fused"]

    /// One `NAME.txt` manifest with the values of `NAME.inputs.f32`.
    struct Fixture {
        var model = ""
        var tolerance: Float = 0
        var inputs: [(name: String, shape: [Int], values: [Float])] = []
        var outputShape: [Int] = []
        var expected: [Float] = []

        init(name: String) throws {
            let text = try String(contentsOf: fixtures.appendingPathComponent("\(name).txt"), encoding: .utf8)
            var inputShapes: [(String, [Int])] = []
            for line in text.split(separator: "\n") where !line.hasPrefix("#") {
                let fields = line.split(separator: " ").map(String.init)
                guard let key = fields.first else { continue }
                let rest = Array(fields.dropFirst())
                switch key {
                case "model": model = fixtures.appendingPathComponent(rest[0]).standardized.path
                case "tolerance": tolerance = try XCTUnwrap(Float(rest[0]))
                case "input": inputShapes.append((rest[0], try rest.dropFirst().map { try XCTUnwrap(Int($0)) }))
                case "output": outputShape = try rest.dropFirst().map { try XCTUnwrap(Int($0)) }
                case "expected": expected = try rest.map { try XCTUnwrap(Float($0)) }
                default: XCTFail("\(name).txt: unknown line '\(line)'")
                }
            }
            let data = try Data(contentsOf: fixtures.appendingPathComponent("\(name).inputs.f32"))
            let all = data.withUnsafeBytes { raw in
                (0 ..< data.count / 4).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
            }
            var offset = 0
            for (inputName, shape) in inputShapes {
                let count = shape.reduce(1, *)
                XCTAssertLessThanOrEqual(offset + count, all.count, "\(name).inputs.f32 is too short")
                inputs.append((inputName, shape, Array(all[offset ..< min(offset + count, all.count)])))
                offset += count
            }
            XCTAssertEqual(offset, all.count, "\(name).inputs.f32 has \(all.count) floats, the manifest \(offset)")
        }
    }

    func testEveryModelMatchesOnnxRuntime() throws {
        for name in Self.models {
            let fixture = try Fixture(name: name)
            let model: NetworkModel
            do { model = try NetworkModel(path: fixture.model) } catch {
                XCTFail("\(name): \(error)")
                continue
            }
            // The session takes inputs in the model's order; the manifest names them.
            var ordered: [(shape: [Int], values: [Float])] = []
            for port in model.inputs {
                let input = try XCTUnwrap(fixture.inputs.first { $0.name == port.name }, "\(name): no input \(port.name)")
                ordered.append((input.shape, input.values))
            }
            let session = NetworkSession(model: model)
            let shapes = ordered.map(\.shape)
            let outputShapes: [[Int]]
            do { outputShapes = try session.outputShapes(inputShapes: shapes) } catch {
                XCTFail("\(name): \(error)")
                continue
            }
            XCTAssertEqual(outputShapes.first, fixture.outputShape, name)
            var outputs = outputShapes.map { [Float](repeating: .nan, count: $0.reduce(1, *)) }
            let inputBuffers = ordered.map { UnsafeMutablePointer<Float>.allocate(capacity: max($0.values.count, 1)) }
            defer { inputBuffers.forEach { $0.deallocate() } }
            for (buffer, input) in zip(inputBuffers, ordered) { buffer.update(from: input.values, count: input.values.count) }
            let outputBuffers = outputs.map { UnsafeMutablePointer<Float>.allocate(capacity: max($0.count, 1)) }
            defer { outputBuffers.forEach { $0.deallocate() } }
            do {
                _ = try session.run(inputs: inputBuffers.map { UnsafePointer($0) }, inputShapes: shapes,
                                    outputs: outputBuffers.map { Optional($0) })
            } catch {
                XCTFail("\(name): \(error)")
                continue
            }
            for j in outputs.indices { outputs[j] = Array(UnsafeBufferPointer(start: outputBuffers[j], count: outputs[j].count)) }
            let got = outputs[0]
            XCTAssertEqual(got.count, fixture.expected.count, name)
            for (i, (value, want)) in zip(got, fixture.expected).enumerated() {
                XCTAssertLessThanOrEqual(abs(value - want), fixture.tolerance,
                                         "\(name) output \(i): got \(value), onnxruntime \(want)")
            }
        }
    }
}
