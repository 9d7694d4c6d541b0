/// Exact Shapley values: every coalition evaluated once, in batches, and each value
/// credited to every player with the Shapley weight of its size:
/// phi_i = sum over S containing i of w(|S|-1) v(S) - sum over S without i of w(|S|) v(S),
/// w(s) = s! (M-s-1)! / M!. One pass over 2^M values, no pairs to look up.
enum ExactShapley {
    static func values(of game: CoalitionGame) throws(MedInferError) -> ShapleyValues {
        let m = game.playerCount, k = game.outputCount
        guard m >= 1, m <= ShapleyMethod.maxExactPlayers else {
            throw .invalidArgument("exact Shapley values need 1...\(ShapleyMethod.maxExactPlayers) players, got \(m)")
        }
        var weight = [Double](repeating: 0, count: m)
        weight[0] = 1 / Double(m)
        for s in stride(from: 1, to: m, by: 1) { weight[s] = weight[s - 1] * Double(s) / Double(m - s) }

        let order = game.enumerationOrder
        guard order.count == m, Set(order).count == m, order.allSatisfy({ $0 >= 0 && $0 < m }) else {
            throw .internal("the game's enumeration order is not a permutation of its players")
        }
        let total = 1 << m
        let batch = max(1, min(game.preferredBatch, total))
        var members = [UInt8](repeating: 0, count: batch * m)
        var values = [Double](repeating: 0, count: batch * k)
        // phi_i = A_i - C with A_i = sum over S containing i of (w(|S|-1) + w(|S|)) v(S) and
        // C = sum over all S of w(|S|) v(S): per coalition one add per member, no selects.
        // (A is indexed by mask bit; `order` maps bits to players at the end.)
        var sums = [Double](repeating: 0, count: m * k)
        var common = [Double](repeating: 0, count: k)
        var base = [Double](repeating: 0, count: k)
        var start = 0
        while start < total {
            let n = min(batch, total - start)
            members.withUnsafeMutableBufferPointer { members in
                order.withUnsafeBufferPointer { order in
                    for j in 0 ..< n {
                        let mask = start + j, row = members.baseAddress! + j * m
                        for i in 0 ..< m { row[order[i]] = UInt8(truncatingIfNeeded: mask >> i) & 1 }
                    }
                }
            }
            try members.withUnsafeBufferPointer { (mp) throws(MedInferError) in
                try values.withUnsafeMutableBufferPointer { (vp) throws(MedInferError) in
                    try game.evaluateInBatches(members: mp.baseAddress!, count: n, values: vp.baseAddress!)
                }
            }
            if start == 0 { for o in 0 ..< k { base[o] = values[o] } }
            values.withUnsafeBufferPointer { values in
                sums.withUnsafeMutableBufferPointer { sums in
                    for j in 0 ..< n {
                        let mask = start + j
                        let size = mask.nonzeroBitCount
                        let present = size > 0 ? weight[size - 1] : 0
                        let absent = size < m ? weight[size] : 0
                        for o in 0 ..< k {
                            let v = values[j * k + o]
                            common[o] += absent * v
                            let u = (present + absent) * v
                            var bits = mask
                            while bits != 0 {
                                sums[bits.trailingZeroBitCount * k + o] += u
                                bits &= bits - 1
                            }
                        }
                    }
                }
            }
            start += n
        }
        var phi = [Double](repeating: 0, count: m * k)
        for i in 0 ..< m {
            for o in 0 ..< k { phi[order[i] * k + o] = sums[i * k + o] - common[o] }
        }
        return ShapleyValues(playerCount: m, outputCount: k, values: phi, base: base)
    }
}
