#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Binary element-wise operations with NumPy broadcasting, and unary maps.
enum BinaryOperator: Sendable {
    case add, sub, mul, div, pow, max, min

    @inline(__always)
    func apply(_ a: Float, _ b: Float) -> Float {
        switch self {
        case .add: return a + b
        case .sub: return a - b
        case .mul: return a * b
        case .div: return a / b
        case .pow: return powf(a, b)
        case .max: return a.isNaN || b.isNaN ? .nan : Swift.max(a, b)
        case .min: return a.isNaN || b.isNaN ? .nan : Swift.min(a, b)
        }
    }
}

/// How two operands broadcast to an output shape, reduced to a loop nest whose innermost
/// run is contiguous in the output: strides are 0 along broadcast axes.
struct BroadcastLayout: Equatable {
    var outer: [Int]          // output extents of the outer axes
    var strideA: [Int], strideB: [Int]
    var inner: Int            // innermost run length
    var innerStrideA: Int, innerStrideB: Int  // 0 or 1

    /// Output shape of broadcasting `a` with `b`, or nil when they are incompatible.
    static func shape(_ a: [Int], _ b: [Int]) -> [Int]? {
        let rank = Swift.max(a.count, b.count)
        var out = [Int](repeating: 1, count: rank)
        for i in 0 ..< rank {
            let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
            let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
            if da == db || db == 1 { out[i] = da } else if da == 1 { out[i] = db } else { return nil }
        }
        return out
    }

    init(a: [Int], b: [Int], out: [Int]) {
        let rank = out.count
        func strides(_ s: [Int]) -> [Int] {
            let padded = [Int](repeating: 1, count: rank - s.count) + s
            var result = [Int](repeating: 0, count: rank)
            var step = 1
            for i in stride(from: rank - 1, through: 0, by: -1) {
                result[i] = padded[i] == 1 ? 0 : step
                step *= padded[i]
            }
            return result
        }
        var sa = strides(a), sb = strides(b)
        var extents = out
        // Merge adjacent axes that stay contiguous for both operands.
        var i = rank - 1
        while i > 0 {
            let canMerge = sa[i - 1] == sa[i] * extents[i] && sb[i - 1] == sb[i] * extents[i]
            if canMerge {
                extents[i - 1] *= extents[i]
                sa[i - 1] = sa[i]; sb[i - 1] = sb[i]
                extents.remove(at: i); sa.remove(at: i); sb.remove(at: i)
            }
            i -= 1
        }
        if extents.isEmpty { extents = [1]; sa = [0]; sb = [0] }
        inner = extents.removeLast()
        innerStrideA = sa.removeLast()
        innerStrideB = sb.removeLast()
        outer = extents
        strideA = sa
        strideB = sb
    }
}

enum Elementwise {
    static func binary(_ op: BinaryOperator, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                       _ out: UnsafeMutablePointer<Float>, _ layout: BroadcastLayout) {
        let outerCount = layout.outer.reduce(1, *)
        if outerCount == 1 {
            run(op, a, layout.innerStrideA, b, layout.innerStrideB, out, layout.inner)
            return
        }
        if layout.outer.count == 1 {
            // One outer axis (a [rows, features] tensor and a per-feature vector, say):
            // the operator chosen once, not per row.
            let rows = layout.outer[0], strideA = layout.strideA[0], strideB = layout.strideB[0]
            switch op {
            case .add: rowsLoop(a, strideA, b, strideB, out, layout, rows) { $0 + $1 } scalar: { $0 + $1 }; return
            case .sub: rowsLoop(a, strideA, b, strideB, out, layout, rows) { $0 - $1 } scalar: { $0 - $1 }; return
            case .mul: rowsLoop(a, strideA, b, strideB, out, layout, rows) { $0 * $1 } scalar: { $0 * $1 }; return
            case .div: rowsLoop(a, strideA, b, strideB, out, layout, rows) { $0 / $1 } scalar: { $0 / $1 }; return
            case .pow, .max, .min: break   // scalar per element: the odometer below
            }
        }
        // A stack odometer: a heap array here would cost more than a small operation.
        withUnsafeTemporaryAllocation(of: Int.self, capacity: max(layout.outer.count, 1)) { index in
            index.initialize(repeating: 0)
            odometer(op, a, b, out, layout, outerCount: outerCount, index: index)
        }
    }

    private static func odometer(_ op: BinaryOperator, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                                 _ out: UnsafeMutablePointer<Float>, _ layout: BroadcastLayout, outerCount: Int,
                                 index: UnsafeMutableBufferPointer<Int>) {
        var offA = 0, offB = 0
        var o = out
        for _ in 0 ..< outerCount {
            run(op, a + offA, layout.innerStrideA, b + offB, layout.innerStrideB, o, layout.inner)
            o += layout.inner
            // Odometer increment over the outer axes.
            var axis = layout.outer.count - 1
            while axis >= 0 {
                index[axis] += 1
                offA += layout.strideA[axis]; offB += layout.strideB[axis]
                if index[axis] < layout.outer[axis] { break }
                offA -= layout.strideA[axis] * layout.outer[axis]
                offB -= layout.strideB[axis] * layout.outer[axis]
                index[axis] = 0
                axis -= 1
            }
        }
    }

    @inline(__always)
    private static func rowsLoop(_ a: UnsafePointer<Float>, _ strideA: Int, _ b: UnsafePointer<Float>, _ strideB: Int,
                                 _ out: UnsafeMutablePointer<Float>, _ layout: BroadcastLayout, _ rows: Int,
                                 _ vector: (SIMD8<Float>, SIMD8<Float>) -> SIMD8<Float>, scalar: (Float, Float) -> Float) {
        for r in 0 ..< rows {
            loop(a + r &* strideA, layout.innerStrideA, b + r &* strideB, layout.innerStrideB, out + r &* layout.inner,
                 layout.inner, vector, scalar: scalar)
        }
    }

    @inline(__always)
    static func run(_ op: BinaryOperator, _ a: UnsafePointer<Float>, _ sa: Int, _ b: UnsafePointer<Float>, _ sb: Int,
                    _ out: UnsafeMutablePointer<Float>, _ count: Int) {
        switch op {
        case .add: loop(a, sa, b, sb, out, count) { $0 + $1 } scalar: { $0 + $1 }
        case .sub: loop(a, sa, b, sb, out, count) { $0 - $1 } scalar: { $0 - $1 }
        case .mul: loop(a, sa, b, sb, out, count) { $0 * $1 } scalar: { $0 * $1 }
        case .div: loop(a, sa, b, sb, out, count) { $0 / $1 } scalar: { $0 / $1 }
        default: for i in 0 ..< count { out[i] = op.apply(a[i * sa], b[i * sb]) }
        }
    }

    @inline(__always)
    static func loop(_ a: UnsafePointer<Float>, _ sa: Int, _ b: UnsafePointer<Float>, _ sb: Int,
                     _ out: UnsafeMutablePointer<Float>, _ count: Int,
                     _ vector: (SIMD8<Float>, SIMD8<Float>) -> SIMD8<Float>, scalar: (Float, Float) -> Float) {
        var i = 0
        let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b), ro = UnsafeMutableRawPointer(out)
        let splatA = SIMD8<Float>(repeating: a[0]), splatB = SIMD8<Float>(repeating: b[0])
        while i + 8 <= count {
            let va = sa == 0 ? splatA : ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            let vb = sb == 0 ? splatB : rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            ro.storeBytes(of: vector(va, vb), toByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
        while i < count { out[i] = scalar(a[i * sa], b[i * sb]); i += 1 }
    }
}

enum UnaryOperator: Sendable {
    case activation(Activation)
    case exp, log, sqrt, abs, neg, reciprocal, floor, ceil, erf
    /// Casts computed in float: toward zero (integers), x != 0 (bool), nearest half.
    case truncate, toBool, toHalf

    @inline(__always)
    func apply(_ x: Float) -> Float {
        switch self {
        case .activation(let f): return f.apply(x)
        case .exp: return expf(x)
        case .log: return logf(x)
        case .sqrt: return sqrtf(x)
        case .abs: return Swift.abs(x)
        case .neg: return -x
        case .reciprocal: return 1 / x
        case .floor: return floorf(x)
        case .ceil: return ceilf(x)
        case .erf: return erff(x)
        case .truncate: return x.isFinite ? x.rounded(.towardZero) : (x.isNaN ? 0 : x)
        case .toBool: return x != 0 ? 1 : 0
        case .toHalf: return Float(Float16(x))
        }
    }

    func apply(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, count: Int) {
        if case .activation(let f) = self, f == .relu {
            output.update(from: input, count: count)
            reluInPlace(output, count: count)
            return
        }
        for i in 0 ..< count { output[i] = apply(input[i]) }
    }
}
