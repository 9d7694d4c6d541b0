/// Public entry to the GEMM kernel, for the kernel benchmark and hosts that link the
/// core directly: row-major C[m×n] = A[m×k] · B[k×n], single thread, on the widest
/// instruction set the CPU has (see `KernelDispatch`).
public func sgemm(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                  c: UnsafeMutablePointer<Float>) {
    Gemm.multiply(m: m, n: n, k: k,
                  a: StridedMatrixA(base: a, rowStride: k, colStride: 1),
                  b: StridedMatrixB(base: b, rowStride: n, colStride: 1),
                  c: c, ldc: n, epilogue: .init())
}
