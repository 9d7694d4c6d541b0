/// GEMM micro-kernels compiled for x86-64-v4 (AVX-512). This module is built with
/// `-march=x86-64-v4` and called only after the CPU reports AVX-512 (see
/// `KernelDispatch` in the core), so one library runs everywhere and uses zmm registers
/// where they exist. The packed-operand layout is the core's: A in 6-row panels, B in
/// 16-column panels.

/// A 6×32 tile: two adjacent 16-column B panels (`b0`, `b1`) against one 6-row A panel,
/// 12 zmm accumulators. C is row-major with row stride `ldc`; `accumulate` adds to it.
public func gemmMicroKernel6x32(depth: Int, a: UnsafePointer<Float>, b0: UnsafePointer<Float>,
                                b1: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, ldc: Int,
                                accumulate: Bool) {
    typealias V = SIMD16<Float>
    var c00 = V(), c01 = V(), c10 = V(), c11 = V(), c20 = V(), c21 = V()
    var c30 = V(), c31 = V(), c40 = V(), c41 = V(), c50 = V(), c51 = V()
    let cr = UnsafeMutableRawPointer(c)
    let rb = ldc * 4
    if accumulate {
        c00 = cr.loadUnaligned(fromByteOffset: 0, as: V.self); c01 = cr.loadUnaligned(fromByteOffset: 64, as: V.self)
        c10 = cr.loadUnaligned(fromByteOffset: rb, as: V.self); c11 = cr.loadUnaligned(fromByteOffset: rb + 64, as: V.self)
        c20 = cr.loadUnaligned(fromByteOffset: 2 * rb, as: V.self); c21 = cr.loadUnaligned(fromByteOffset: 2 * rb + 64, as: V.self)
        c30 = cr.loadUnaligned(fromByteOffset: 3 * rb, as: V.self); c31 = cr.loadUnaligned(fromByteOffset: 3 * rb + 64, as: V.self)
        c40 = cr.loadUnaligned(fromByteOffset: 4 * rb, as: V.self); c41 = cr.loadUnaligned(fromByteOffset: 4 * rb + 64, as: V.self)
        c50 = cr.loadUnaligned(fromByteOffset: 5 * rb, as: V.self); c51 = cr.loadUnaligned(fromByteOffset: 5 * rb + 64, as: V.self)
    }
    let ar = UnsafeRawPointer(a), br0 = UnsafeRawPointer(b0), br1 = UnsafeRawPointer(b1)
    var p = 0
    while p < depth {
        let x0 = br0.loadUnaligned(fromByteOffset: p * 64, as: V.self)
        let x1 = br1.loadUnaligned(fromByteOffset: p * 64, as: V.self)
        let ap = ar + p * 24
        var s = V(repeating: ap.load(fromByteOffset: 0, as: Float.self))
        c00 = c00.addingProduct(s, x0); c01 = c01.addingProduct(s, x1)
        s = V(repeating: ap.load(fromByteOffset: 4, as: Float.self))
        c10 = c10.addingProduct(s, x0); c11 = c11.addingProduct(s, x1)
        s = V(repeating: ap.load(fromByteOffset: 8, as: Float.self))
        c20 = c20.addingProduct(s, x0); c21 = c21.addingProduct(s, x1)
        s = V(repeating: ap.load(fromByteOffset: 12, as: Float.self))
        c30 = c30.addingProduct(s, x0); c31 = c31.addingProduct(s, x1)
        s = V(repeating: ap.load(fromByteOffset: 16, as: Float.self))
        c40 = c40.addingProduct(s, x0); c41 = c41.addingProduct(s, x1)
        s = V(repeating: ap.load(fromByteOffset: 20, as: Float.self))
        c50 = c50.addingProduct(s, x0); c51 = c51.addingProduct(s, x1)
        p += 1
    }
    cr.storeBytes(of: c00, toByteOffset: 0, as: V.self); cr.storeBytes(of: c01, toByteOffset: 64, as: V.self)
    cr.storeBytes(of: c10, toByteOffset: rb, as: V.self); cr.storeBytes(of: c11, toByteOffset: rb + 64, as: V.self)
    cr.storeBytes(of: c20, toByteOffset: 2 * rb, as: V.self); cr.storeBytes(of: c21, toByteOffset: 2 * rb + 64, as: V.self)
    cr.storeBytes(of: c30, toByteOffset: 3 * rb, as: V.self); cr.storeBytes(of: c31, toByteOffset: 3 * rb + 64, as: V.self)
    cr.storeBytes(of: c40, toByteOffset: 4 * rb, as: V.self); cr.storeBytes(of: c41, toByteOffset: 4 * rb + 64, as: V.self)
    cr.storeBytes(of: c50, toByteOffset: 5 * rb, as: V.self); cr.storeBytes(of: c51, toByteOffset: 5 * rb + 64, as: V.self)
}
