#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Detects a model file's format from its content and runs the matching reader. The
/// result is validated and compiled for scoring before anyone can use it.
public enum ModelLoader {
    public static func load(path: String) throws(MedInferError) -> CompiledForest {
        let bytes = try FileBytes.read(path: path)
        let result: Result<CompiledForest, MedInferError> = bytes.withUnsafeBytes { buffer in
            do throws(MedInferError) { return .success(try load(bytes: buffer, description: "model")) } catch { return .failure(error) }
        }
        switch result {
        case .success(let forest): return forest
        case .failure(let error): throw error.prefixed("'\(path)'")
        }
    }

    public static func load(bytes: UnsafeRawBufferPointer, description: String = "model") throws(MedInferError)
        -> CompiledForest
    {
        let ensemble = try readEnsemble(bytes, description: description)
        try ensemble.validate()
        return CompiledForest(ensemble)
    }

    /// Whether a model file's first byte is a protobuf field key that an ONNX ModelProto
    /// starts with (ir_version, producer, graph, opset_import...). No text or MedInfer
    /// tree format starts with one of these bytes.
    public static func looksLikeONNX(firstByte: UInt8) -> Bool {
        [0x08, 0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42].contains(firstByte)
    }

    /// The first byte of a file, or nil when it cannot be read (the real load reports why).
    public static func firstByte(path: String) -> UInt8? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var byte: UInt8 = 0
        return read(fd, &byte, 1) == 1 ? byte : nil
    }

    static func readEnsemble(_ bytes: UnsafeRawBufferPointer, description: String) throws(MedInferError)
        -> TreeEnsemble
    {
        guard bytes.count > 0 else { throw .io("the \(description) is empty (0 bytes)") }
        guard bytes.count <= Limits.maxModelFileBytes else {
            throw .outOfMemory("the \(description) is \(bytes.count) bytes, above the \(Limits.maxModelFileBytes)-byte limit")
        }
        if TreeSnapshot.isSnapshot(bytes) {
            return try wrap(TreeSnapshot.read(bytes), "MedInfer tree file")
        }
        var start = 0
        if bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF { start = 3 }
        while start < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[start]) { start += 1 }
        guard start < bytes.count else { throw .parse("the \(description) holds only white space") }

        if bytes[start] == UInt8(ascii: "{") {
            let document = try JSONDocument(bytes: UnsafeRawBufferPointer(rebasing: bytes[start...]),
                                            fileDescription: "JSON \(description)")
            let root = document.root
            guard root.isObject else { throw .parse("the JSON \(description) is not an object") }
            if root.optionalMember("learner") != nil {
                return try wrap(XGBoostJSONReader.read(document), "XGBoost JSON")
            }
            if let format = root.optionalMember("format"), (try? format.string()) == "medinfer-forest" {
                return try wrap(ForestJSONReader.read(document), "forest JSON")
            }
            throw .parse("the JSON \(description) is neither an XGBoost model (no 'learner' field) nor a MedInfer forest (no \"format\": \"medinfer-forest\")")
        }
        if matches(bytes, at: start, "tree") {
            return try wrap(LightGBMTextReader.read(UnsafeRawBufferPointer(rebasing: bytes[start...])), "LightGBM text")
        }
        throw .parse("unrecognized \(description) format: expected XGBoost JSON, LightGBM text or MedInfer forest JSON (XGBoost UBJSON and pickles are not read; save the model as .json)")
    }

    private static func wrap(_ body: @autoclosure () throws(MedInferError) -> TreeEnsemble, _ format: String)
        throws(MedInferError) -> TreeEnsemble
    {
        do throws(MedInferError) { return try body() } catch { throw error.prefixed(format) }
    }

    private static func matches(_ bytes: UnsafeRawBufferPointer, at offset: Int, _ word: String) -> Bool {
        let utf8 = Array(word.utf8)
        guard bytes.count - offset >= utf8.count else { return false }
        for (i, c) in utf8.enumerated() where bytes[offset + i] != c { return false }
        return true
    }
}
