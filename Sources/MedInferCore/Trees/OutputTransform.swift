#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// How raw margins become the library's reported prediction (predict / predict_proba).
public enum OutputTransform: Sendable, Equatable {
    case identity
    /// 1 / (1 + exp(-scale * x)) per column.
    case sigmoid(scale: Double)
    /// scikit-learn binary gradient boosting: one margin becomes [1 - p, p].
    case sigmoidTwoColumns
    case softmax
    /// XGBoost multi:softmax: the index of the largest margin.
    case argmax
    case exp
    /// LightGBM `regression sqrt`: sign(x) * x^2.
    case signedSquare

    /// Values written per row for `columns` raw margins.
    public func outputCount(rawColumns: Int) -> Int {
        switch self {
        case .argmax: return 1
        case .sigmoidTwoColumns: return 2
        default: return rawColumns
        }
    }

    /// Transforms one row in double precision (LightGBM, scikit-learn).
    @inline(__always)
    func apply(raw: UnsafePointer<Double>, columns: Int, out: UnsafeMutablePointer<Double>) {
        switch self {
        case .identity:
            for k in 0..<columns { out[k] = raw[k] }
        case .sigmoid(let scale):
            for k in 0..<columns { out[k] = 1.0 / (1.0 + libmExp(-scale * raw[k])) }
        case .sigmoidTwoColumns:
            let p = 1.0 / (1.0 + libmExp(-raw[0]))
            out[0] = 1.0 - p
            out[1] = p
        case .softmax:
            var largest = raw[0]
            for k in 1..<max(columns, 1) { largest = Swift.max(largest, raw[k]) }
            var sum = 0.0
            for k in 0..<columns {
                let e = libmExp(raw[k] - largest)
                out[k] = e
                sum += e
            }
            for k in 0..<columns { out[k] /= sum }
        case .argmax:
            out[0] = Double(Self.argmax(raw, columns))
        case .exp:
            for k in 0..<columns { out[k] = libmExp(raw[k]) }
        case .signedSquare:
            for k in 0..<columns { out[k] = raw[k] < 0 ? -raw[k] * raw[k] : raw[k] * raw[k] }
        }
    }

    /// Transforms one row in single precision, as XGBoost computes its predictions.
    @inline(__always)
    func apply(raw: UnsafePointer<Float>, columns: Int, out: UnsafeMutablePointer<Double>) {
        switch self {
        case .identity:
            for k in 0..<columns { out[k] = Double(raw[k]) }
        case .sigmoid(let scale):
            let s = Float(scale)
            for k in 0..<columns { out[k] = Double(1 / (1 + expf(-s * raw[k]))) }
        case .sigmoidTwoColumns:
            let p = 1 / (1 + expf(-raw[0]))
            out[0] = Double(1 - p)
            out[1] = Double(p)
        case .softmax:
            var largest = raw[0]
            for k in 1..<max(columns, 1) { largest = Swift.max(largest, raw[k]) }
            // XGBoost adds the denominator in double and divides in float.
            var sum: Double = 0
            for k in 0..<columns { sum += Double(expf(raw[k] - largest)) }
            for k in 0..<columns { out[k] = Double(expf(raw[k] - largest) / Float(sum)) }
        case .argmax:
            out[0] = Double(Self.argmax(raw, columns))
        case .exp:
            for k in 0..<columns { out[k] = Double(expf(raw[k])) }
        case .signedSquare:
            for k in 0..<columns { out[k] = Double(raw[k] < 0 ? -raw[k] * raw[k] : raw[k] * raw[k]) }
        }
    }

    /// First index of the largest value (NaN never wins), as XGBoost's arg max.
    private static func argmax<T: BinaryFloatingPoint>(_ raw: UnsafePointer<T>, _ columns: Int) -> Int {
        var best = 0
        for k in 1..<max(columns, 1) where raw[k] > raw[best] { best = k }
        return best
    }
}

/// The C library's exp, named apart from `OutputTransform.exp`.
@inline(__always) private func libmExp(_ x: Double) -> Double { exp(x) }
