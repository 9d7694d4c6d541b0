#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Softmax / LogSoftmax over one axis of a tensor viewed as [outer, axis, inner].
/// Subtracts the maximum first, as every reference does, so large logits do not overflow.
enum Softmax {
    static func run(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>,
                    outer: Int, axis: Int, inner: Int, log: Bool) {
        for o in 0 ..< outer {
            for i in 0 ..< inner {
                let base = o * axis * inner + i
                var maxValue = -Float.infinity
                for a in 0 ..< axis { maxValue = Swift.max(maxValue, input[base + a * inner]) }
                var sum: Float = 0
                for a in 0 ..< axis {
                    let e = expf(input[base + a * inner] - maxValue)
                    output[base + a * inner] = e
                    sum += e
                }
                if log {
                    let logSum = logf(sum)
                    for a in 0 ..< axis { output[base + a * inner] = input[base + a * inner] - maxValue - logSum }
                } else {
                    let scale = 1 / sum
                    for a in 0 ..< axis { output[base + a * inner] *= scale }
                }
            }
        }
    }
}
