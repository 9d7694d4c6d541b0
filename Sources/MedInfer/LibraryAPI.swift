import CMedInferABI
import MedInferCore

let libraryVersion = "0.1.0"
nonisolated(unsafe) private let versionCString: UnsafePointer<CChar> = staticCString(libraryVersion)

@_cdecl("medinfer_abi_version")
public func medinfer_abi_version() -> Int32 { MEDINFER_ABI_VERSION }

@_cdecl("medinfer_version")
public func medinfer_version() -> UnsafePointer<CChar> { versionCString }

@_cdecl("medinfer_last_error")
public func medinfer_last_error() -> UnsafePointer<CChar> { LastError.current }

nonisolated(unsafe) private let statusNames: [UnsafePointer<CChar>] = [
    "MEDINFER_OK", "MEDINFER_ERR_INVALID_ARGUMENT", "MEDINFER_ERR_IO", "MEDINFER_ERR_PARSE",
    "MEDINFER_ERR_UNSUPPORTED", "MEDINFER_ERR_SHAPE_MISMATCH", "MEDINFER_ERR_BUFFER_TOO_SMALL",
    "MEDINFER_ERR_OUT_OF_MEMORY", "MEDINFER_ERR_INTERNAL",
].map(staticCString)
nonisolated(unsafe) private let unknownStatusName = staticCString("MEDINFER_UNKNOWN_STATUS")

@_cdecl("medinfer_status_name")
public func medinfer_status_name(_ status: Int32) -> UnsafePointer<CChar> {
    guard status >= 0, Int(status) < statusNames.count else { return unknownStatusName }
    return statusNames[Int(status)]
}

/// A C string that lives as long as the process.
func staticCString(_ text: String) -> UnsafePointer<CChar> {
    let utf8 = Array(text.utf8CString)
    let p = UnsafeMutablePointer<CChar>.allocate(capacity: utf8.count)
    p.initialize(from: utf8, count: utf8.count)
    return UnsafePointer(p)
}
