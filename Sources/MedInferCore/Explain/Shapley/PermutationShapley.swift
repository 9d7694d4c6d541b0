/// Shapley values estimated from random orderings of the players: along each ordering
/// players join one at a time and each is credited with the change it causes. Orderings
/// come in antithetic pairs (an ordering, then its reverse), which cancels much of the
/// variance that comes from a player joining early or late. Each ordering's credits sum to
/// v(all) - v(none) exactly, so the average is additive whatever the budget.
enum PermutationShapley {
    static func values(of game: CoalitionGame, budget: Int, seed: UInt64) throws(MedInferError) -> ShapleyValues {
        let m = game.playerCount, k = game.outputCount
        guard m >= 1 else { throw .invalidArgument("an explanation needs at least one player") }
        guard budget >= 2 * m else {
            throw .invalidArgument("a budget of \(budget) evaluations is below 2 x \(m) players (one antithetic pair of permutations)")
        }
        // The empty and the full coalition, shared by every ordering.
        var ends = [Double](repeating: 0, count: 2 * k)
        var endMembers = [UInt8](repeating: 0, count: 2 * m)
        for i in 0 ..< m { endMembers[m + i] = 1 }
        try endMembers.withUnsafeBufferPointer { (mp) throws(MedInferError) in
            try ends.withUnsafeMutableBufferPointer { (vp) throws(MedInferError) in
                try game.evaluateInBatches(members: mp.baseAddress!, count: 2, values: vp.baseAddress!)
            }
        }
        let base = Array(ends[0 ..< k])
        var phi = [Double](repeating: 0, count: m * k)
        guard m > 1 else {
            for o in 0 ..< k { phi[o] = ends[k + o] - ends[o] }
            return ShapleyValues(playerCount: m, outputCount: k, values: phi, base: base)
        }
        let orderings = (budget - 2) / (m - 1)
        // Orderings per batch: their inner coalitions (prefixes of 1...m-1 players).
        let perBatch = max(1, game.preferredBatch / (m - 1))
        var random = SplitMix64(seed: seed)
        var order = Array(0 ..< m)
        var orders = [Int](repeating: 0, count: perBatch * m)
        var members = [UInt8](repeating: 0, count: perBatch * (m - 1) * m)
        var values = [Double](repeating: 0, count: perBatch * (m - 1) * k)
        var done = 0
        while done < orderings {
            let n = min(perBatch, orderings - done)
            for r in 0 ..< n {
                if (done + r) % 2 == 0 {
                    random.shuffle(&order)
                } else {
                    order.reverse()
                }
                for i in 0 ..< m { orders[r * m + i] = order[i] }
                // The prefixes (1...m-1 first players) of an ordering in ascending order, of
                // its reverse in descending order: consecutive coalitions then differ in
                // one player, and in two where one ordering ends and the next begins (a
                // game that re-evaluates incrementally, like an image, gains from it).
                let block = r * (m - 1) * m
                let descending = (done + r) % 2 == 1
                for j in 0 ..< m - 1 {
                    let row = block + j * m
                    if j == 0 {
                        for i in 0 ..< m { members[row + i] = descending ? 1 : 0 }
                        members[row + order[descending ? m - 1 : 0]] = descending ? 0 : 1
                    } else {
                        for i in 0 ..< m { members[row + i] = members[row - m + i] }
                        if descending { members[row + order[m - 1 - j]] = 0 } else { members[row + order[j]] = 1 }
                    }
                }
            }
            try members.withUnsafeBufferPointer { (mp) throws(MedInferError) in
                try values.withUnsafeMutableBufferPointer { (vp) throws(MedInferError) in
                    try game.evaluateInBatches(members: mp.baseAddress!, count: n * (m - 1), values: vp.baseAddress!)
                }
            }
            for r in 0 ..< n {
                let descending = (done + r) % 2 == 1
                // The row of the prefix of q players (1...m-1).
                func row(_ q: Int) -> Int { r * (m - 1) + (descending ? m - 1 - q : q - 1) }
                for p in 0 ..< m {
                    let player = orders[r * m + p]
                    for o in 0 ..< k {
                        let before = p == 0 ? ends[o] : values[row(p) * k + o]
                        let after = p == m - 1 ? ends[k + o] : values[row(p + 1) * k + o]
                        phi[player * k + o] += after - before
                    }
                }
            }
            done += n
        }
        let scale = 1 / Double(orderings)
        for i in phi.indices { phi[i] *= scale }
        return ShapleyValues(playerCount: m, outputCount: k, values: phi, base: base)
    }
}

/// A small, fast, seedable generator (Steele, Lea and Flood's SplitMix64): the same seed
/// gives the same orderings on every platform.
struct SplitMix64 {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in 0 ..< bound (bound >= 1), without modulo bias (Lemire's method).
    mutating func next(below bound: Int) -> Int {
        let b = UInt64(bound)
        var product = next().multipliedFullWidth(by: b)
        if product.low < b {
            let threshold = (0 &- b) % b
            while product.low < threshold { product = next().multipliedFullWidth(by: b) }
        }
        return Int(product.high)
    }

    /// Fisher-Yates.
    mutating func shuffle(_ array: inout [Int]) {
        var i = array.count - 1
        while i > 0 {
            let j = next(below: i + 1)
            array.swapAt(i, j)
            i -= 1
        }
    }
}
