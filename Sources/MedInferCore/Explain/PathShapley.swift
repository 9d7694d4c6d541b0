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
    /// 1/n for n in 0...64 (entry 0 unused): the weight recurrences divide by small
    /// integers in their dependency chains, and a multiply is several times faster.
    static let reciprocals: [Double] = (0...64).map { $0 == 0 ? 0 : 1 / Double($0) }

    /// Path weights after extending the root element and every element but `skip`;
    /// returns how many were extended. `weights` must hold count + 1 values.
    @inline(__always)
    static func extend(zero: UnsafePointer<Double>, pattern: UInt64, count: Int, skip: Int = -1,
                       weights: UnsafeMutablePointer<Double>) -> Int {
        reciprocals.withUnsafeBufferPointer { reciprocal in
            weights[0] = 1
            var length = 0
            for k in 0..<count where k != skip {
                let follows = pattern >> UInt64(k) & 1 == 1
                length += 1
                weights[length] = 0
                let scale = reciprocal[length + 1]
                let zeroScale = zero[k] * scale
                var i = length - 1
                if follows {
                    while i >= 0 {
                        let w = weights[i]
                        weights[i + 1] += w * Double(i + 1) * scale
                        weights[i] = w * Double(length - i) * zeroScale
                        i -= 1
                    }
                } else {
                    while i >= 0 {
                        weights[i] *= Double(length - i) * zeroScale
                        i -= 1
                    }
                }
            }
            return length
        }
    }

    /// Sum of the path weights with an element taken out again (`follows`: its one
    /// fraction is 1, else 0; `zero`: its zero fraction); `depth` elements extended.
    @inline(__always)
    static func unwoundSum(weights: UnsafePointer<Double>, depth: Int, follows: Bool, zero: Double) -> Double {
        reciprocals.withUnsafeBufferPointer { reciprocal in
            var total = 0.0
            if follows {
                var next = weights[depth]
                var i = depth - 1
                while i >= 0 {
                    let share = next * reciprocal[i + 1]
                    total += share
                    next = weights[i] - share * zero * Double(depth - i)
                    i -= 1
                }
            } else {
                var i = depth - 1
                while i >= 0 {
                    total += weights[i] * reciprocal[depth - i]
                    i -= 1
                }
                total /= zero
            }
            return total * Double(depth + 1)
        }
    }

    /// factor_k for every element of a path; `weights` needs count + 1 values.
    static func factors(zero: UnsafePointer<Double>, pattern: UInt64, count: Int,
                        weights: UnsafeMutablePointer<Double>, out: UnsafeMutablePointer<Double>) {
        let depth = extend(zero: zero, pattern: pattern, count: count, weights: weights)
        for k in 0..<count {
            let o: Double = pattern >> UInt64(k) & 1 == 1 ? 1 : 0
            let difference = o - zero[k]
            out[k] = difference == 0 ? 0
                : difference * unwoundSum(weights: weights, depth: depth, follows: o == 1, zero: zero[k])
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
                    : conditioning * difference * unwoundSum(weights: weights, depth: depth, follows: oj == 1, zero: zero[j])
            }
        }
    }
}
