import CMedInferABI
import Foundation
import Testing

/// medinfer_model_save / load round trips, and damaged tree files are errors.
@Suite struct TreeFileTests {
    static let models = ["noshow_xgb.json", "noshow_lgbm.txt", "breast_rf.json"]
    static let modelsDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("examples/models")

    func load(_ bytes: [UInt8]) -> (Int32, OpaquePointer?) {
        var model: OpaquePointer?
        let status = medinfer_model_load_from_memory(bytes, bytes.count, &model)
        return (status, model)
    }

    func saved(_ name: String) throws -> (OpaquePointer?, [UInt8]) {
        var model: OpaquePointer?
        let path = Self.modelsDirectory.appendingPathComponent(name).path
        try #require(medinfer_model_load(path, &model) == MEDINFER_OK, "\(String(cString: medinfer_last_error()))")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("medinfer-\(UUID()).mdi")
        defer { try? FileManager.default.removeItem(at: file) }
        try #require(medinfer_model_save(model, file.path) == MEDINFER_OK)
        return (model, try [UInt8](Data(contentsOf: file)))
    }

    @Test(arguments: models)
    func roundTripScoresIdentically(name: String) throws {
        let (original, bytes) = try saved(name)
        defer { medinfer_model_free(original) }
        let (status, copy) = load(bytes)
        try #require(status == MEDINFER_OK, "\(String(cString: medinfer_last_error()))")
        defer { medinfer_model_free(copy) }
        var features = 0
        medinfer_model_feature_count(original, &features)
        var generator = SystemRandomNumberGenerator()
        let rows = 500
        let x = (0..<rows * features).map { i -> Float in
            i % 17 == 0 ? .nan : Float.random(in: -5...200, using: &generator)
        }
        for output in [MEDINFER_OUTPUT_TRANSFORMED, MEDINFER_OUTPUT_RAW] {
            var options = medinfer_predict_options()
            medinfer_predict_options_init(&options)
            options.output = output
            var a = [Double](repeating: 0, count: rows * 8), b = a
            #expect(medinfer_predict(original, x, rows, features, &options, &a, a.count) == MEDINFER_OK)
            #expect(medinfer_predict(copy, x, rows, features, &options, &b, b.count) == MEDINFER_OK)
            #expect(a == b)
        }
        var a = [Double](repeating: 0, count: 50 * (features + 1) * 2), b = a
        #expect(medinfer_shap_values(original, x, 50, features, nil, &a, a.count) == MEDINFER_OK)
        #expect(medinfer_shap_values(copy, x, 50, features, nil, &b, b.count) == MEDINFER_OK)
        #expect(a == b)
    }

    @Test func damagedFilesAreErrorsNotCrashes() throws {
        let (model, bytes) = try saved("noshow_lgbm.txt")
        medinfer_model_free(model)
        // Every truncation.
        for length in stride(from: 8, to: bytes.count, by: 97) {
            let (status, loaded) = load(Array(bytes.prefix(length)))
            #expect(status == MEDINFER_ERR_PARSE, "length \(length)")
            #expect(loaded == nil)
        }
        // Random byte damage: any status but a crash; a model that still loads must score.
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            var damaged = bytes
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                damaged[Int.random(in: 8..<damaged.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            let (status, loaded) = load(damaged)
            if status == MEDINFER_OK {
                let row = [Float](repeating: 1, count: 23)
                var out = [Double](repeating: 0, count: 4)
                #expect(medinfer_predict(loaded, row, 1, 23, nil, &out, 4) == MEDINFER_OK)
                medinfer_model_free(loaded)
            } else {
                #expect(!String(cString: medinfer_last_error()).isEmpty)
            }
        }
        // A future version is refused by name.
        var future = bytes
        future[8] = 99
        #expect(load(future).0 == MEDINFER_ERR_UNSUPPORTED)
    }
}
