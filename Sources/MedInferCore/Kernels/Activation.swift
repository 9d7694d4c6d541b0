#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An element-wise function fused into the store of a GEMM or convolution tile, so the
/// activation costs no extra pass over memory.
public enum Activation: Equatable, Sendable {
    case identity
    case relu
    case clip(min: Float, max: Float)
    case leakyRelu(alpha: Float)
    case sigmoid
    case tanh

    @inline(__always)
    func apply(_ x: Float) -> Float {
        switch self {
        case .identity: return x
        case .relu: return x > 0 ? x : (x.isNaN ? x : 0)
        case .clip(let lo, let hi): return x.isNaN ? x : Swift.min(Swift.max(x, lo), hi)
        case .leakyRelu(let alpha): return x >= 0 ? x : x * alpha
        case .sigmoid: return Activation.sigmoid(x)
        case .tanh: return Glibc.tanhf(x)
        }
    }

    /// The logistic function, written so large |x| neither overflows nor loses precision.
    @inline(__always)
    static func sigmoid(_ x: Float) -> Float {
        if x >= 0 { return 1 / (1 + expf(-x)) }
        let e = expf(x)
        return e / (1 + e)
    }

    /// Applies the activation to `count` values in place.
    func apply(_ values: UnsafeMutablePointer<Float>, count: Int) {
        switch self {
        case .identity: return
        case .relu:
            reluInPlace(values, count: count)
        default:
            for i in 0 ..< count { values[i] = apply(values[i]) }
        }
    }
}

/// max(x, 0) by clearing every value whose sign bit is set: integer SIMD lowers to plain
/// vector instructions, where a float compare-and-select would be scalarized.
@inline(__always)
func reluInPlace(_ values: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    let raw = UnsafeMutableRawPointer(values)
    while i + 8 <= count {
        let bits = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Int32>.self)
        raw.storeBytes(of: bits & ~(bits &>> 31), toByteOffset: i * 4, as: SIMD8<Int32>.self)
        i += 8
    }
    while i < count {
        if values[i] < 0 { values[i] = 0 }
        i += 1
    }
}
