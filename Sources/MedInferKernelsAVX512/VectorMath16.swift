/// `VectorMath.exp` (MedInferVectorMath) on sixteen lanes: the same reduction and
/// polynomial, so the same accuracy (KernelTests checks both against libm). A copy
/// because Swift SIMD code cannot be written once for two widths: generic SIMD code
/// compiles to per-lane loops (measured 10x slower), and the eight-lane version applied
/// to two halves was 2x slower than this in the LSTM cell.
enum VectorMath16 {
    typealias Vector = SIMD16<Float>

    @inline(always)
    static func exp(_ input: Vector) -> Vector {
        var x = input.replacing(with: 88.0, where: input .> 88.0)
        x = x.replacing(with: -87.0, where: x .< -87.0)
        let shifter = Vector(repeating: 12_582_912)
        let shifted = shifter.addingProduct(x, Vector(repeating: 1.442_695_04))
        let n = shifted - shifter
        var r = x.addingProduct(n, Vector(repeating: -0.693_145_751_953_125))
        r = r.addingProduct(n, Vector(repeating: -1.428_606_765_330_187_045e-06))
        var p = Vector(repeating: 1.0 / 720)
        p = Vector(repeating: 1.0 / 120).addingProduct(p, r)
        p = Vector(repeating: 1.0 / 24).addingProduct(p, r)
        p = Vector(repeating: 1.0 / 6).addingProduct(p, r)
        p = Vector(repeating: 0.5).addingProduct(p, r)
        p = Vector(repeating: 1).addingProduct(p, r)
        p = Vector(repeating: 1).addingProduct(p, r)
        let power = (bits(shifted) &- 0x4B40_0000 &+ 127) &<< 23
        return p * float(power)
    }

    @inline(always)
    static func bits(_ v: Vector) -> SIMD16<Int32> { unsafeBitCast(v, to: SIMD16<Int32>.self) }

    @inline(always)
    static func float(_ v: SIMD16<Int32>) -> Vector { unsafeBitCast(v, to: Vector.self) }
}
