#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import MedInferCore
import Synchronization

/// What a `medinfer_model*` points to: the compiled model plus the C strings the query
/// functions hand out, made once at load so that queries never allocate and the
/// pointers stay valid until the model is freed.
final class ModelHandle {
    let forest: CompiledForest
    let objective: UnsafeMutablePointer<CChar>
    let featureNames: [UnsafeMutablePointer<CChar>]
    /// Built on the first SHAP request, once, under the lock; immutable afterwards.
    private let explainerSlot = Mutex<Result<TreeExplainer, MedInferError>?>(nil)

    init(_ forest: CompiledForest) {
        self.forest = forest
        objective = strdup(forest.ensemble.objective)
        featureNames = forest.ensemble.featureNames?.map { strdup($0) } ?? []
    }

    deinit {
        free(objective)
        featureNames.forEach { free($0) }
    }

    var ensemble: TreeEnsemble { forest.ensemble }

    func explainer() throws(MedInferError) -> TreeExplainer {
        let result = explainerSlot.withLock { slot in
            if let slot { return slot }
            let built: Result<TreeExplainer, MedInferError>
            do throws(MedInferError) {
                built = .success(try TreeExplainer(forest.ensemble))
            } catch {
                built = .failure(error)
            }
            slot = built
            return built
        }
        return try result.get()
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
