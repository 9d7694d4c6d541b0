import CMedInferABI
import Foundation
import Testing

/// The C API called through the header's own prototypes: conventions that hold for
/// every function (status codes, last error, NULL handling, buffer lengths).
@Suite struct CAPITests {
    /// A two-leaf LightGBM model on 2 features: x0 <= 0.5 -> 1.0 else -1.0.
    static let stump = """
    tree
    version=v4
    num_class=1
    num_tree_per_iteration=1
    label_index=0
    max_feature_idx=1
    objective=regression
    feature_names=a b
    tree_sizes=100

    Tree=0
    num_leaves=2
    num_cat=0
    split_feature=0
    split_gain=1
    threshold=0.5
    decision_type=2
    left_child=-1
    right_child=-2
    leaf_value=1 -1
    leaf_weight=1 1
    leaf_count=5 5
    internal_value=0
    internal_weight=2
    internal_count=10
    is_linear=0
    shrinkage=1


    end of trees
    """

    func load(_ text: String) -> (Int32, OpaquePointer?) {
        var model: OpaquePointer?
        let bytes = Array(text.utf8)
        let status = medinfer_model_load_from_memory(bytes, bytes.count, &model)
        return (status, model)
    }

    func lastError() -> String { String(cString: medinfer_last_error()) }

    @Test func versionAndStatusNames() {
        #expect(medinfer_abi_version() == MEDINFER_ABI_VERSION)
        #expect(String(cString: medinfer_version()).split(separator: ".").count == 3)
        #expect(String(cString: medinfer_status_name(MEDINFER_ERR_PARSE)) == "MEDINFER_ERR_PARSE")
        #expect(String(cString: medinfer_status_name(-5)) == "MEDINFER_UNKNOWN_STATUS")
    }

    @Test func scoresAStumpWithMissingValues() throws {
        let (status, model) = load(Self.stump)
        #expect(status == MEDINFER_OK, "\(lastError())")
        defer { medinfer_model_free(model) }
        let rows: [Float] = [0.5, 0, 0.50001, 0, .nan, 0, -.infinity, 0]
        var out = [Double](repeating: 0, count: 4)
        #expect(medinfer_predict(model, rows, 4, 2, nil, &out, out.count) == MEDINFER_OK)
        #expect(out == [1, -1, 1, 1])  // NaN follows the stored default (decision_type 2: left)
        #expect(lastError() == "")
        var name: UnsafePointer<CChar>?
        #expect(medinfer_model_feature_name(model, 1, &name) == MEDINFER_OK)
        #expect(String(cString: name!) == "b")
    }

    @Test func rejectsBadArgumentsWithNamedErrors() throws {
        let (_, model) = load(Self.stump)
        defer { medinfer_model_free(model) }
        var out = [Double](repeating: -7, count: 3)
        let rows = [Float](repeating: 0, count: 8)
        #expect(medinfer_predict(nil, rows, 1, 2, nil, &out, 3) == MEDINFER_ERR_INVALID_ARGUMENT)
        #expect(lastError().contains("'model' is NULL"))
        #expect(medinfer_predict(model, rows, 0, 2, nil, &out, 3) == MEDINFER_ERR_INVALID_ARGUMENT)
        #expect(medinfer_predict(model, rows, 1, 3, nil, &out, 3) == MEDINFER_ERR_SHAPE_MISMATCH)
        #expect(lastError().contains("the model has 2 features"))
        #expect(medinfer_predict(model, rows, 4, 2, nil, &out, 3) == MEDINFER_ERR_BUFFER_TOO_SMALL)
        #expect(lastError().contains("4 needed"))
        #expect(out == [-7, -7, -7])
        #expect(medinfer_predict(model, rows, Int.max, 2, nil, &out, 3) == MEDINFER_ERR_OUT_OF_MEMORY)
        var options = medinfer_predict_options()
        medinfer_predict_options_init(&options)
        options.iteration_limit = 2
        #expect(medinfer_predict(model, rows, 1, 2, &options, &out, 3) == MEDINFER_ERR_INVALID_ARGUMENT)
        #expect(lastError().contains("iteration_limit 2"))
        options.iteration_limit = 0
        options.output = 7
        #expect(medinfer_predict(model, rows, 1, 2, &options, &out, 3) == MEDINFER_ERR_INVALID_ARGUMENT)
        options = medinfer_predict_options()
        #expect(medinfer_predict(model, rows, 1, 2, &options, &out, 3) == MEDINFER_ERR_INVALID_ARGUMENT)
        #expect(lastError().contains("struct_size"))
        medinfer_model_free(nil)
    }

    @Test func malformedModelsAreErrorsNotCrashes() {
        let cases: [(String, Int32, String)] = [
            ("", MEDINFER_ERR_INVALID_ARGUMENT, "size"),
            ("{\"learner\": {", MEDINFER_ERR_PARSE, "truncated"),
            ("{\"learner\": 3}", MEDINFER_ERR_PARSE, "expected an object"),
            ("{\"format\": \"x\"}", MEDINFER_ERR_PARSE, "neither"),
            ("\u{1}\u{2}garbage", MEDINFER_ERR_PARSE, "unrecognized"),
            (Self.stump.replacingOccurrences(of: "\n\nend of trees", with: ""), MEDINFER_ERR_PARSE, "end of trees"),
            (Self.stump.replacingOccurrences(of: "right_child=-2", with: "right_child=0"), MEDINFER_ERR_PARSE, "reached twice"),
            (Self.stump.replacingOccurrences(of: "split_feature=0", with: "split_feature=9"), MEDINFER_ERR_PARSE, "split_feature"),
            (Self.stump.replacingOccurrences(of: "num_leaves=2", with: "num_leaves=99999999999"), MEDINFER_ERR_PARSE, "num_leaves"),
            (Self.stump.replacingOccurrences(of: "leaf_value=1 -1", with: "leaf_value=1"), MEDINFER_ERR_PARSE, "leaf_value"),
        ]
        for (text, expected, fragment) in cases {
            let (status, model) = load(text)
            #expect(status == expected, "\(text.prefix(30)): \(lastError())")
            #expect(model == nil)
            #expect(lastError().contains(fragment), "\(lastError())")
        }
        var model: OpaquePointer?
        #expect(medinfer_model_load("/nonexistent/model.json", &model) == MEDINFER_ERR_IO)
        #expect(lastError().contains("/nonexistent/model.json"))
        #expect(medinfer_model_load("/tmp", &model) == MEDINFER_ERR_IO)
        #expect(medinfer_model_load(nil, &model) == MEDINFER_ERR_INVALID_ARGUMENT)
    }

    @Test func shapValuesSumToTheMarginAndCheckTheirBuffers() {
        let (_, model) = load(Self.stump)
        defer { medinfer_model_free(model) }
        let rows: [Float] = [0.2, 5, .nan, 1]
        var values = [Double](repeating: 0, count: 6)
        #expect(medinfer_shap_values(model, rows, 2, 2, nil, &values, 6) == MEDINFER_OK, "\(lastError())")
        // Cover 5/5: expected value 0; x0 = 0.2 goes left (+1), NaN follows the default (left).
        #expect(values == [1, 0, 0, 1, 0, 0])
        var interactions = [Double](repeating: 0, count: 9)
        #expect(medinfer_shap_interaction_values(model, rows, 1, 2, nil, &interactions, 9) == MEDINFER_OK)
        #expect(interactions == [1, 0, 0, 0, 0, 0, 0, 0, 0])
        var small = [Double](repeating: -3, count: 5)
        #expect(medinfer_shap_values(model, rows, 2, 2, nil, &small, 5) == MEDINFER_ERR_BUFFER_TOO_SMALL)
        #expect(lastError().contains("6 needed"))
        #expect(small.allSatisfy { $0 == -3 })
        #expect(medinfer_shap_interaction_values(model, rows, Int.max / 2, 2, nil, &small, 5) == MEDINFER_ERR_OUT_OF_MEMORY)
        #expect(medinfer_shap_values(model, nil, 1, 2, nil, &small, 5) == MEDINFER_ERR_INVALID_ARGUMENT)
        #expect(medinfer_shap_values(model, rows, 1, 3, nil, &small, 5) == MEDINFER_ERR_SHAPE_MISMATCH)
        var options = medinfer_explain_options()
        #expect(medinfer_shap_values(model, rows, 1, 2, &options, &values, 6) == MEDINFER_ERR_INVALID_ARGUMENT)
        medinfer_explain_options_init(&options)
        options.iteration_limit = 3
        #expect(medinfer_shap_values(model, rows, 1, 2, &options, &values, 6) == MEDINFER_ERR_INVALID_ARGUMENT)
    }

    @Test func shapNeedsCovers() {
        let coverless = Self.stump.replacingOccurrences(of: "internal_count=10", with: "internal_count=0")
        let (status, model) = load(coverless)
        #expect(status == MEDINFER_OK)
        defer { medinfer_model_free(model) }
        var values = [Double](repeating: 0, count: 3)
        let row: [Float] = [0, 0]
        #expect(medinfer_shap_values(model, row, 1, 2, nil, &values, 3) == MEDINFER_ERR_UNSUPPORTED)
        #expect(lastError().contains("cover"))
    }
}
