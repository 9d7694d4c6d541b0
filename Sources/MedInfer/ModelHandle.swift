#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import MedInferCore

/// What a `medinfer_model*` points to: the compiled model plus the C strings the query
/// functions hand out, made once at load so that queries never allocate and the
/// pointers stay valid until the model is freed.
final class ModelHandle {
    private let trees: CompiledForest?
    let network: NetworkModel?
    let objective: UnsafeMutablePointer<CChar>
    let featureNames: [UnsafeMutablePointer<CChar>]
    let labels: [UnsafeMutablePointer<CChar>]
    let inputNames: [UnsafeMutablePointer<CChar>]
    let outputNames: [UnsafeMutablePointer<CChar>]
    /// Built on the first SHAP requests, under the lock; immutable once built.
    private let explainerSlot = Locked<ExplainerState>(ExplainerState())

    init(_ forest: CompiledForest) {
        trees = forest
        network = nil
        objective = strdup(forest.ensemble.objective)
        featureNames = forest.ensemble.featureNames?.map { strdup($0) } ?? []
        labels = []; inputNames = []; outputNames = []
    }

    init(_ network: NetworkModel) {
        trees = nil
        self.network = network
        objective = strdup("onnx")
        featureNames = []
        labels = network.labels.map { strdup($0) }
        inputNames = network.inputs.map { strdup($0.name) }
        outputNames = network.outputs.map { strdup($0.name) }
    }

    deinit {
        free(objective)
        (featureNames + labels + inputNames + outputNames).forEach { free($0) }
    }

    /// The tree model, or an error naming the function for a network.
    var forest: CompiledForest {
        get throws(MedInferError) {
            guard let trees else {
                throw .invalidArgument("this is an ONNX network; tree functions (predict, SHAP, tree queries, save) do not apply: run it with medinfer_session_run")
            }
            return trees
        }
    }

    var ensemble: TreeEnsemble { get throws(MedInferError) { try forest.ensemble } }

    func requireNetwork(_ function: String) throws(MedInferError) -> NetworkModel {
        guard let network else { throw .invalidArgument("\(function): this is a tree model, not an ONNX network") }
        return network
    }

    /// The explainer for a request of `rows` rows. Requests of fewer than `tableRows`
    /// rows use the lean explainer (no precomputed tables: ready in a fraction of a
    /// millisecond, which a serverless cold start needs); larger ones the tabulated
    /// explainer, built once on the first such request. The choice depends only on the
    /// request, so a call's result never depends on what ran before it. The two sum
    /// their terms in different orders: values agree to about 1e-15.
    func explainer(rows: Int) throws(MedInferError) -> TreeExplainer {
        let ensemble = try self.ensemble
        let tables = rows >= Self.tableRows
        let result = explainerSlot.withLock { state -> Result<TreeExplainer, MedInferError> in
            if let built = tables ? state.full : state.lean { return built }
            let built: Result<TreeExplainer, MedInferError>
            do throws(MedInferError) { built = .success(try TreeExplainer(ensemble, tables: tables)) } catch { built = .failure(error) }
            if tables { state.full = built } else { state.lean = built }
            return built
        }
        return try result.get()
    }

    /// Rows from which building the explainer's tables pays off.
    static let tableRows = 64

    struct ExplainerState {
        var lean: Result<TreeExplainer, MedInferError>?
        var full: Result<TreeExplainer, MedInferError>?
    }

    func retainedPointer() -> OpaquePointer {
        OpaquePointer(Unmanaged.passRetained(self).toOpaque())
    }

    /// The handle behind a pointer the caller got from a load function.
    static func from(_ pointer: OpaquePointer?, in function: String) throws(MedInferError) -> ModelHandle {
        let pointer = try required(pointer, "model", in: function)
        return Unmanaged<ModelHandle>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
    }
}
