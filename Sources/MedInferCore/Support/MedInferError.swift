/// Why an operation failed. Each case maps to one stable C status code; the message
/// names the problem for a person (file, field, expected vs. got).
public enum MedInferError: Error, Equatable, Sendable {
    case invalidArgument(String)
    case io(String)
    case parse(String)
    case unsupported(String)
    case shapeMismatch(String)
    case bufferTooSmall(String)
    case outOfMemory(String)
    case `internal`(String)

    public var message: String {
        switch self {
        case .invalidArgument(let m), .io(let m), .parse(let m), .unsupported(let m),
             .shapeMismatch(let m), .bufferTooSmall(let m), .outOfMemory(let m), .internal(let m):
            return m
        }
    }

    /// The same error with context put in front, e.g. the tree and node being read.
    public func prefixed(_ context: String) -> MedInferError {
        switch self {
        case .invalidArgument(let m): return .invalidArgument("\(context): \(m)")
        case .io(let m): return .io("\(context): \(m)")
        case .parse(let m): return .parse("\(context): \(m)")
        case .unsupported(let m): return .unsupported("\(context): \(m)")
        case .shapeMismatch(let m): return .shapeMismatch("\(context): \(m)")
        case .bufferTooSmall(let m): return .bufferTooSmall("\(context): \(m)")
        case .outOfMemory(let m): return .outOfMemory("\(context): \(m)")
        case .internal(let m): return .internal("\(context): \(m)")
        }
    }
}
