/// The Shapley weights of one root-to-leaf path in path-dependent TreeSHAP (Lundberg
/// et al., "Consistent individualized feature attribution for tree ensembles", Alg. 2).
///
/// A path has D distinct features. Element k carries a zero fraction z_k (the share of
/// training cover that follows the path at that feature's splits) and a one fraction
/// o_k in {0, 1} (whether the explained row follows the path there). The leaf's value v
/// contributes `v * factor_k` to feature k with
/// `factor_k = (o_k - z_k) * unwoundSum_k`, where the weights come from extending the
/// path one element at a time; the order of extension does not change the result, which
/// is what lets paths be processed independently of the tree walk.
enum PathShapley {
    /// Path weights after extending the root element and `count` elements.
    /// `weights` must hold count + 1 values.
    @inline(__always)
    static func extend(zero: UnsafePointer<Double>, pattern: UInt64, count: Int, skip: Int = -1,
                       weights: UnsafeMutablePointer<Double>) -> Int {
        weights[0] = 1
        var length = 0
        for k in 0..<count where k != skip {
            let o: Double = pattern >> UInt64(k) & 1 == 1 ? 1 : 0
            let z = zero[k]
            length += 1
            weights[length] = 0
            let scale = 1 / Double(length + 1)
            var i = length - 1
            while i >= 0 {
                weights[i + 1] += o * weights[i] * Double(i + 1) * scale
                weights[i] = z * weights[i] * Double(length - i) * scale
                i -= 1
            }
        }
        return length
    }

    /// Sum of the path weights with element (o, z) taken out again; `depth` is the
    /// number of extended elements.
    @inline(__always)
    static func unwoundSum(weights: UnsafePointer<Double>, depth: Int, one: Double, zero: Double) -> Double {
        var total = 0.0
        if one != 0 {
            var next = weights[depth]
            var i = depth - 1
            while i >= 0 {
                let share = next / (Double(i + 1) * one)
                total += share
                next = weights[i] - share * zero * Double(depth - i)
                i -= 1
            }
        } else {
            var i = depth - 1
            while i >= 0 {
                total += weights[i] / (zero * Double(depth - i))
                i -= 1
            }
        }
        return total * Double(depth + 1)
    }

    /// factor_k for every element of a path; `weights` needs count + 1 values.
    static func factors(zero: UnsafePointer<Double>, pattern: UInt64, count: Int,
                        weights: UnsafeMutablePointer<Double>, out: UnsafeMutablePointer<Double>) {
        let depth = extend(zero: zero, pattern: pattern, count: count, weights: weights)
        for k in 0..<count {
            let o: Double = pattern >> UInt64(k) & 1 == 1 ? 1 : 0
            let difference = o - zero[k]
            out[k] = difference == 0 ? 0
                : difference * unwoundSum(weights: weights, depth: depth, one: o, zero: zero[k])
        }
    }

    /// Interaction factors of a path: out[i * count + j] (i != j) is the contribution
    /// to the (i, j) interaction per unit of leaf value, (o_i - z_i) / 2 times element
    /// j's factor on the path without i. Diagonal entries are left 0.
    static func interactionFactors(zero: UnsafePointer<Double>, pattern: UInt64, count: Int,
                                   weights: UnsafeMutablePointer<Double>, out: UnsafeMutablePointer<Double>) {
        for i in 0..<count {
            let oi: Double = pattern >> UInt64(i) & 1 == 1 ? 1 : 0
            let conditioning = (oi - zero[i]) / 2
            out[i * count + i] = 0
            if conditioning == 0 {
                for j in 0..<count where j != i { out[i * count + j] = 0 }
                continue
            }
            let depth = extend(zero: zero, pattern: pattern, count: count, skip: i, weights: weights)
            for j in 0..<count where j != i {
                let oj: Double = pattern >> UInt64(j) & 1 == 1 ? 1 : 0
                let difference = oj - zero[j]
                out[i * count + j] = difference == 0 ? 0
                    : conditioning * difference * unwoundSum(weights: weights, depth: depth, one: oj, zero: zero[j])
            }
        }
    }
}
