// Replays the offline parity fixtures written by Tests/Parity/make_fixtures.py: model
// files trained with XGBoost, LightGBM and scikit-learn, input rows (with NaN and edge
// values) and the outputs the training libraries computed for them. No Python needed.
//
// The library is exercised only through its C API (include/medinfer.h), exactly as a host
// would call it: load, query the shape, predict both output kinds, free. Cases that record
// TreeSHAP references are also explained with medinfer_shap_values (and, where recorded,
// medinfer_shap_interaction_values) and compared in the C API's layout.

import CMedInferABI
import Foundation
import XCTest

final class FixtureParityTests: XCTestCase {
    /// One entry of Fixtures/manifest.json.
    struct FixtureCase: Decodable {
        let name: String
        let model_file: String
        let rows: Int
        let features: Int
        let input_file: String
        let expected_transformed_file: String
        let expected_raw_file: String
        let output_count_transformed: Int
        let output_count_raw: Int
        let tolerance: Double
        /// SHAP references (optional): rows * (M + 1) * K doubles, out[(row * (M + 1) + j) * K + k].
        let expected_shap_file: String?
        let shap_tolerance: Double?
        /// Interaction references of the first `interaction_rows` rows (optional):
        /// out[((row * (M + 1) + i) * (M + 1) + j) * K + k].
        let expected_interactions_file: String?
        let interaction_rows: Int?
    }

    struct Manifest: Decodable {
        let cases: [FixtureCase]
    }

    struct FixtureError: Error, CustomStringConvertible {
        let description: String
    }

    static var fixturesDirectory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    }

    static func loadManifest() throws -> Manifest {
        let url = fixturesDirectory.appendingPathComponent("manifest.json")
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw FixtureError(description: "\(url.path) is missing; run .venv/bin/python Tests/Parity/make_fixtures.py")
        }
        return try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: url))
    }

    /// Reads `count` little-endian float32 values.
    static func readFloat32(_ file: String, count: Int) throws -> [Float] {
        let data = try Data(contentsOf: fixturesDirectory.appendingPathComponent(file))
        guard data.count == count * 4 else {
            throw FixtureError(description: "\(file): \(data.count) bytes, expected \(count) float32 values (\(count * 4) bytes)")
        }
        return data.withUnsafeBytes { raw in
            (0..<count).map { i in
                Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)))
            }
        }
    }

    /// Reads `count` little-endian float64 values.
    static func readFloat64(_ file: String, count: Int) throws -> [Double] {
        let data = try Data(contentsOf: fixturesDirectory.appendingPathComponent(file))
        guard data.count == count * 8 else {
            throw FixtureError(description: "\(file): \(data.count) bytes, expected \(count) float64 values (\(count * 8) bytes)")
        }
        return data.withUnsafeBytes { raw in
            (0..<count).map { i in
                Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)))
            }
        }
    }

    static func lastError() -> String {
        guard let message = medinfer_last_error() else { return "" }
        return String(cString: message)
    }

    static func statusName(_ status: Int32) -> String {
        guard let name = medinfer_status_name(status) else { return "status \(status)" }
        return String(cString: name)
    }

    func testManifestListsTheRepresentativeModels() throws {
        let manifest = try Self.loadManifest()
        XCTAssertGreaterThanOrEqual(manifest.cases.count, 10, "expected about a dozen fixture cases")
        for c in manifest.cases {
            XCTAssertGreaterThan(c.rows, 0, c.name)
            XCTAssertGreaterThan(c.features, 0, c.name)
            XCTAssertGreaterThan(c.tolerance, 0, c.name)
            if c.expected_shap_file != nil {
                XCTAssertGreaterThan(c.shap_tolerance ?? 0, 0, "\(c.name): shap_tolerance")
            }
            if c.expected_interactions_file != nil {
                XCTAssertNotNil(c.expected_shap_file, "\(c.name): interactions without SHAP values")
                XCTAssertGreaterThan(c.interaction_rows ?? 0, 0, "\(c.name): interaction_rows")
                XCTAssertLessThanOrEqual(c.interaction_rows ?? 0, c.rows, "\(c.name): interaction_rows")
            }
        }
        let explained = manifest.cases.filter { $0.expected_shap_file != nil }.map(\.name)
        for name in ["xgb_binary", "xgb_multi_softprob", "xgb_categorical", "lgb_binary", "lgb_categorical",
                     "lgb_rf", "sk_rf_minmax_pipeline"] {
            XCTAssertTrue(explained.contains(name), "\(name) should record SHAP values")
        }
        XCTAssertTrue(manifest.cases.contains { $0.expected_interactions_file != nil },
                      "expected at least one case with interaction values")
    }

    func testEveryFixtureMatchesItsReferenceLibrary() throws {
        let manifest = try Self.loadManifest()
        var summary: [String] = []
        for fixture in manifest.cases {
            summary += try replay(fixture)
        }
        print("Fixture parity (max |medinfer - reference|):\n" + summary.joined(separator: "\n"))
    }

    func testShapFixturesMatchTheirReference() throws {
        let manifest = try Self.loadManifest()
        var summary: [String] = []
        for fixture in manifest.cases where fixture.expected_shap_file != nil {
            summary += try replayShap(fixture)
        }
        XCTAssertFalse(summary.isEmpty, "no fixture records SHAP values")
        print("Fixture SHAP parity (max |medinfer - reference|):\n" + summary.joined(separator: "\n"))
    }

    /// |got - expected| with NaN == NaN and equal infinities counting as 0, NaN on one side as inf.
    static func difference(_ e: Double, _ g: Double) -> Double {
        if e.isNaN && g.isNaN { return 0 }
        if e.isNaN || g.isNaN { return .infinity }
        if e == g { return 0 }
        return abs(e - g)
    }

    /// Compares `got` with `expected` element by element; fails with the worst element's
    /// position (`describe` turns a flat index into "row r, feature j, output k").
    private func check(_ label: String, got: [Double], expected: [Double], tolerance: Double,
                       describe: (Int) -> String) -> String {
        var worst = 0.0
        var worstIndex = 0
        var failing = 0
        for i in 0..<expected.count {
            let diff = Self.difference(expected[i], got[i])
            if diff > tolerance { failing += 1 }
            if diff > worst {
                worst = diff
                worstIndex = i
            }
        }
        XCTAssertLessThanOrEqual(
            worst, tolerance,
            "\(label): \(failing) of \(expected.count) values differ by more than \(tolerance); worst at "
            + "\(describe(worstIndex)): expected \(expected[worstIndex]), got \(got[worstIndex]) (|diff| \(worst))")
        return "  \(label) values=\(expected.count) max|diff|=\(worst) tolerance=\(tolerance)"
    }

    /// Explains one fixture's rows through medinfer_shap_values (and its first
    /// interaction_rows rows through medinfer_shap_interaction_values) and checks them
    /// against the recorded reference, plus additivity against the recorded raw outputs.
    private func replayShap(_ fixture: FixtureCase) throws -> [String] {
        guard let shapFile = fixture.expected_shap_file, let tolerance = fixture.shap_tolerance else { return [] }
        let path = Self.fixturesDirectory.appendingPathComponent(fixture.model_file).path
        var model: OpaquePointer? = nil
        let loadStatus = path.withCString { medinfer_model_load($0, &model) }
        guard loadStatus == MEDINFER_OK, let model else {
            XCTFail("\(fixture.name): medinfer_model_load(\(fixture.model_file)) returned "
                    + "\(Self.statusName(loadStatus)): \(Self.lastError())")
            return ["\(fixture.name): load failed"]
        }
        defer { medinfer_model_free(model) }

        var k = 0
        XCTAssertEqual(medinfer_model_output_count(model, MEDINFER_OUTPUT_RAW, &k), MEDINFER_OK, fixture.name)
        XCTAssertEqual(k, fixture.output_count_raw, "\(fixture.name): raw outputs per row")
        guard k == fixture.output_count_raw, k > 0 else { return ["\(fixture.name): output count mismatch"] }
        let m = fixture.features
        let width = m + 1
        let input = try Self.readFloat32(fixture.input_file, count: fixture.rows * m)
        let expected = try Self.readFloat64(shapFile, count: fixture.rows * width * k)
        let raw = try Self.readFloat64(fixture.expected_raw_file, count: fixture.rows * k)

        var options = medinfer_explain_options()
        medinfer_explain_options_init(&options)
        var got = [Double](repeating: .nan, count: fixture.rows * width * k)
        let status = input.withUnsafeBufferPointer { features in
            got.withUnsafeMutableBufferPointer { out in
                withUnsafePointer(to: options) { opts in
                    medinfer_shap_values(model, features.baseAddress, fixture.rows, m, opts, out.baseAddress,
                                         out.count)
                }
            }
        }
        guard status == MEDINFER_OK else {
            XCTFail("\(fixture.name) [shap]: medinfer_shap_values returned \(Self.statusName(status)): "
                    + Self.lastError())
            return ["\(fixture.name) [shap]: failed"]
        }
        let feature = { (j: Int) in j == m ? "bias" : "feature \(j)" }
        var lines = [check("\(fixture.name) [shap]", got: got, expected: expected, tolerance: tolerance) { i in
            "row \(i / (width * k)), \(feature((i / k) % width)), output \(i % k)"
        }]

        // Additivity: each row's values plus bias sum to the reference's raw output.
        var sums = [Double](repeating: 0, count: fixture.rows * k)
        for row in 0..<fixture.rows {
            for j in 0..<width {
                for c in 0..<k { sums[row * k + c] += got[(row * width + j) * k + c] }
            }
        }
        lines.append(check("\(fixture.name) [shap additivity]", got: sums, expected: raw, tolerance: tolerance) { i in
            "row \(i / k), output \(i % k)"
        })

        if let interactionFile = fixture.expected_interactions_file, let n = fixture.interaction_rows {
            let expectedInteractions = try Self.readFloat64(interactionFile, count: n * width * width * k)
            var interactions = [Double](repeating: .nan, count: n * width * width * k)
            let status = input.withUnsafeBufferPointer { features in
                interactions.withUnsafeMutableBufferPointer { out in
                    withUnsafePointer(to: options) { opts in
                        medinfer_shap_interaction_values(model, features.baseAddress, n, m, opts, out.baseAddress,
                                                         out.count)
                    }
                }
            }
            guard status == MEDINFER_OK else {
                XCTFail("\(fixture.name) [interactions]: medinfer_shap_interaction_values returned "
                        + "\(Self.statusName(status)): \(Self.lastError())")
                return lines
            }
            lines.append(check("\(fixture.name) [interactions]", got: interactions, expected: expectedInteractions,
                               tolerance: tolerance) { i in
                "row \(i / (width * width * k)), \(feature((i / (width * k)) % width)) x "
                + "\(feature((i / k) % width)), output \(i % k)"
            })
            // A row of each interaction matrix sums to that feature's SHAP value.
            var rowSums = [Double](repeating: 0, count: n * width * k)
            for row in 0..<n {
                for i in 0..<width {
                    for j in 0..<width {
                        for c in 0..<k {
                            rowSums[(row * width + i) * k + c] += interactions[((row * width + i) * width + j) * k + c]
                        }
                    }
                }
            }
            lines.append(check("\(fixture.name) [interaction rows sum to shap]", got: rowSums,
                               expected: Array(got[0..<(n * width * k)]), tolerance: tolerance) { i in
                "row \(i / (width * k)), \(feature((i / k) % width)), output \(i % k)"
            })
        }
        return lines
    }

    /// Loads one fixture's model through the C API, predicts both output kinds and checks
    /// them against the recorded reference. Returns one summary line per output kind.
    private func replay(_ fixture: FixtureCase) throws -> [String] {
        let path = Self.fixturesDirectory.appendingPathComponent(fixture.model_file).path
        var model: OpaquePointer? = nil
        let loadStatus = path.withCString { medinfer_model_load($0, &model) }
        guard loadStatus == MEDINFER_OK, let model else {
            XCTFail("\(fixture.name): medinfer_model_load(\(fixture.model_file)) returned "
                    + "\(Self.statusName(loadStatus)): \(Self.lastError())")
            return ["\(fixture.name): load failed"]
        }
        defer { medinfer_model_free(model) }

        var featureCount = 0
        XCTAssertEqual(medinfer_model_feature_count(model, &featureCount), MEDINFER_OK, fixture.name)
        XCTAssertEqual(featureCount, fixture.features, "\(fixture.name): feature count")
        guard featureCount == fixture.features else { return ["\(fixture.name): feature count mismatch"] }

        let input = try Self.readFloat32(fixture.input_file, count: fixture.rows * fixture.features)
        var lines: [String] = []
        let kinds: [(String, Int32, Int, String)] = [
            ("transformed", MEDINFER_OUTPUT_TRANSFORMED, fixture.output_count_transformed,
             fixture.expected_transformed_file),
            ("raw", MEDINFER_OUTPUT_RAW, fixture.output_count_raw, fixture.expected_raw_file),
        ]
        for (label, kind, expectedColumns, expectedFile) in kinds {
            var columns = 0
            XCTAssertEqual(medinfer_model_output_count(model, kind, &columns), MEDINFER_OK,
                           "\(fixture.name) [\(label)]: medinfer_model_output_count: \(Self.lastError())")
            XCTAssertEqual(columns, expectedColumns, "\(fixture.name) [\(label)]: values per row")
            guard columns == expectedColumns else { continue }
            let expected = try Self.readFloat64(expectedFile, count: fixture.rows * columns)

            var options = medinfer_predict_options()
            medinfer_predict_options_init(&options)
            options.output = kind
            var got = [Double](repeating: .nan, count: fixture.rows * columns)
            let status = input.withUnsafeBufferPointer { features in
                got.withUnsafeMutableBufferPointer { out in
                    withUnsafePointer(to: options) { opts in
                        medinfer_predict(model, features.baseAddress, fixture.rows, fixture.features, opts,
                                         out.baseAddress, out.count)
                    }
                }
            }
            guard status == MEDINFER_OK else {
                XCTFail("\(fixture.name) [\(label)]: medinfer_predict returned \(Self.statusName(status)): "
                        + Self.lastError())
                continue
            }

            var worst = 0.0
            var worstIndex = 0
            var failing = 0
            for i in 0..<expected.count {
                let e = expected[i]
                let g = got[i]
                let diff: Double
                if e.isNaN && g.isNaN {
                    diff = 0
                } else if e.isNaN || g.isNaN {
                    diff = .infinity
                } else if e == g {
                    diff = 0  // also equal infinities
                } else {
                    diff = abs(e - g)
                }
                if diff > fixture.tolerance { failing += 1 }
                if diff > worst {
                    worst = diff
                    worstIndex = i
                }
            }
            let row = worstIndex / columns
            let column = worstIndex % columns
            let rowValues = input[(row * fixture.features)..<((row + 1) * fixture.features)]
            XCTAssertLessThanOrEqual(
                worst, fixture.tolerance,
                "\(fixture.name) [\(label)]: \(failing) of \(expected.count) values differ by more than "
                + "\(fixture.tolerance); worst row \(row) column \(column): expected \(expected[worstIndex]), "
                + "got \(got[worstIndex]) (|diff| \(worst)); input row: \(Array(rowValues))")
            lines.append("  \(fixture.name) [\(label)] rows=\(fixture.rows) max|diff|=\(worst) "
                         + "tolerance=\(fixture.tolerance)")
        }
        return lines
    }
}
