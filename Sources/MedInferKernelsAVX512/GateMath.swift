/// σ and tanh as fractions for the cells, 16 lanes: σ(x) = 1/(1 + exp(−x));
/// tanh(x) = ±(1 − e)/(1 + e) with e = exp(−2|x|). Keeping numerators and denominators
/// apart lets a cell combine its fractions and divide once or twice instead of per gate.
enum GateMath {
    typealias V = SIMD16<Float>
    /// Computed, not stored: a stored static costs a swift_once call per cell update.
    @inline(always) static var one: V { V(repeating: 1) }

    /// 1 + exp(−x), with x below −28 taken as −28 so that products of three stay finite
    /// (σ(−28) < 1e-12).
    @inline(always)
    static func sigmoidDenominator(_ x: V) -> V {
        let y = -x
        return one + exp(y.replacing(with: V(repeating: 28), where: y .> 28).replacing(with: V(repeating: -87), where: y .< -87))
    }

    @inline(always)
    static func tanhParts(_ x: V) -> (numerator: V, denominator: V) {
        let y = float(bits(x) & 0x7FFF_FFFF) * -2
        let e = exp(y.replacing(with: V(repeating: -87), where: y .< -87))
        let sign = bits(x) & Int32(bitPattern: 0x8000_0000)
        return (float(bits(one - e) | sign), one + e)
    }

    /// exp(y) for y the callers have clamped to [−87, 28], within 4e-7 relative: one
    /// reduction constant (ln 2 rounded to float is off by 1.9e-9, times |n| <= 126) and a
    /// degree-5 minimax polynomial on [−ln2/2, ln2/2] (1.05e-7). The general exp's second
    /// constant, sixth degree and own clamps bought accuracy sigmoid and tanh cannot show
    /// (both stay within 1.2e-7 of the exact functions) for 3 of its 17 operations.
    @inline(always)
    static func exp(_ y: V) -> V {
        let shifter = V(repeating: 12_582_912)
        let shifted = shifter.addingProduct(y, V(repeating: 1.442_695_04))
        let n = shifted - shifter
        let r = y.addingProduct(n, V(repeating: -0.693_147_182_464_599_609_375))
        var p = V(repeating: 0.008_312_638_849_020_004)
        p = V(repeating: 0.041_890_092_194_080_35).addingProduct(p, r)
        p = V(repeating: 0.166_671_127_080_917_36).addingProduct(p, r)
        p = V(repeating: 0.499_992_311_000_824).addingProduct(p, r)
        p = one.addingProduct(p, r)
        p = one.addingProduct(p, r)
        let power = (bits(shifted) &- 0x4B40_0000 &+ 127) &<< 23
        return p * float(power)
    }

    @inline(always)
    static func bits(_ v: V) -> SIMD16<Int32> { unsafeBitCast(v, to: SIMD16<Int32>.self) }

    @inline(always)
    static func float(_ v: SIMD16<Int32>) -> V { unsafeBitCast(v, to: V.self) }
}
