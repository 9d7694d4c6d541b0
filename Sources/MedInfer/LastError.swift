#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CMedInferABI
import MedInferCore

/// The per-thread message behind `medinfer_last_error()`: a malloc'ed C string stored
/// in a pthread key, freed when replaced or when the thread exits.
enum LastError {
    nonisolated(unsafe) private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { message in free(message) }
        return key
    }()

    nonisolated(unsafe) static let empty: UnsafePointer<CChar> = {
        let p = UnsafeMutablePointer<CChar>.allocate(capacity: 1)
        p.initialize(to: 0)
        return UnsafePointer(p)
    }()

    static func set(_ message: String) {
        free(pthread_getspecific(key))
        pthread_setspecific(key, strdup(message))
    }

    static func clear() {
        if let old = pthread_getspecific(key) {
            free(old)
            pthread_setspecific(key, nil)
        }
    }

    static var current: UnsafePointer<CChar> {
        guard let message = pthread_getspecific(key) else { return empty }
        return UnsafePointer(message.assumingMemoryBound(to: CChar.self))
    }
}

/// Runs the body of a C entry point: clears the thread's error, and turns a thrown
/// error into its status code and message. Entry points never let an error escape.
@inline(__always)
func cEntryPoint(_ body: () throws(MedInferError) -> Void) -> Int32 {
    do {
        try body()
        LastError.clear()
        return MEDINFER_OK
    } catch {
        LastError.set(error.message)
        return error.status
    }
}

extension MedInferError {
    var status: Int32 {
        switch self {
        case .invalidArgument: return MEDINFER_ERR_INVALID_ARGUMENT
        case .io: return MEDINFER_ERR_IO
        case .parse: return MEDINFER_ERR_PARSE
        case .unsupported: return MEDINFER_ERR_UNSUPPORTED
        case .shapeMismatch: return MEDINFER_ERR_SHAPE_MISMATCH
        case .bufferTooSmall: return MEDINFER_ERR_BUFFER_TOO_SMALL
        case .outOfMemory: return MEDINFER_ERR_OUT_OF_MEMORY
        case .internal: return MEDINFER_ERR_INTERNAL
        }
    }
}

/// Checks a pointer argument, naming it in the error.
@inline(__always)
func required<T>(_ pointer: T?, _ name: String, in function: String) throws(MedInferError) -> T {
    guard let pointer else { throw .invalidArgument("\(function): '\(name)' is NULL") }
    return pointer
}

/// Checks a size_t argument (Swift sees size_t as Int, so a huge value reads as negative)
/// against its range, naming it and showing the value as the caller wrote it.
func checkedSize(_ value: Int, _ name: String, _ range: ClosedRange<Int>, in function: String) throws(MedInferError) -> Int {
    guard range.contains(value) else {
        let shown = UInt(bitPattern: value)
        let limit = range.upperBound == Int.max ? "at least \(range.lowerBound)" : "\(range.lowerBound)...\(range.upperBound)"
        throw .invalidArgument("\(function): \(name) \(shown) is outside \(limit)")
    }
    return value
}
