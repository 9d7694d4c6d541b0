/// exp, sigmoid and tanh on eight floats at once, for the recurrent gates, where libm's
/// scalar calls would cost more than the matrix products. exp reduces x = n·ln2 + r with
/// |r| <= ln2/2 and evaluates a degree-6 polynomial: relative error under 2e-7, so the
/// sigmoid and tanh built on it stay within 1e-6 of the exact functions (KernelTests).
/// NaN stays NaN.
enum VectorMath {
    typealias Vector = SIMD8<Float>

    @inline(__always)
    static func exp(_ input: Vector) -> Vector {
        // Beyond these the result is 0 or +inf in float anyway; clamping keeps 2^n normal.
        var x = input.replacing(with: 88.0, where: input .> 88.0)
        x = x.replacing(with: -87.0, where: x .< -87.0)
        // Round x/ln2 to the nearest integer with the 1.5·2^23 trick (exact for |n| < 2^22).
        let shifter = Vector(repeating: 12_582_912)
        let shifted = shifter.addingProduct(x, Vector(repeating: 1.442_695_04))
        let n = shifted - shifter
        // r = x - n·ln2, with ln2 split in two so that n·ln2_high is exact.
        var r = x.addingProduct(n, Vector(repeating: -0.693_145_751_953_125))
        r = r.addingProduct(n, Vector(repeating: -1.428_606_765_330_187_045e-06))
        var p = Vector(repeating: 1.0 / 720)
        p = Vector(repeating: 1.0 / 120).addingProduct(p, r)
        p = Vector(repeating: 1.0 / 24).addingProduct(p, r)
        p = Vector(repeating: 1.0 / 6).addingProduct(p, r)
        p = Vector(repeating: 0.5).addingProduct(p, r)
        p = Vector(repeating: 1).addingProduct(p, r)
        p = Vector(repeating: 1).addingProduct(p, r)
        // 2^n from the exponent bits: the integer part of `shifted` sits in its low bits.
        let power = (bits(shifted) &- 0x4B40_0000 &+ 127) &<< 23
        return p * float(power)
    }

    @inline(__always)
    static func sigmoid(_ x: Vector) -> Vector {
        1 / (1 + exp(-x))
    }

    @inline(__always)
    static func tanh(_ x: Vector) -> Vector {
        let e = exp(float(bits(x) & 0x7FFF_FFFF) * -2)
        let t = (1 - e) / (1 + e)
        return float(bits(t) | (bits(x) & Int32(bitPattern: 0x8000_0000)))
    }

    @inline(__always)
    static func bits(_ v: Vector) -> SIMD8<Int32> { unsafeBitCast(v, to: SIMD8<Int32>.self) }

    @inline(__always)
    static func float(_ v: SIMD8<Int32>) -> Vector { unsafeBitCast(v, to: Vector.self) }

    /// The same functions on one float (tails of rows whose length is not a multiple of 8).
    @inline(__always)
    static func sigmoid(_ x: Float) -> Float { sigmoid(Vector(repeating: x))[0] }

    @inline(__always)
    static func tanh(_ x: Float) -> Float { tanh(Vector(repeating: x))[0] }
}
