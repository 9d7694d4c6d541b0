// SGEMM throughput of MedInfer's GEMM kernel at square sizes, single thread, against the
// machine's assumed single-core FP32 peak. Prints one line per size:
//   size  seconds  GFLOP/s  percent-of-peak
// Run through Benchmarks/gemm_bench.py, which adds numpy (OpenBLAS, one thread) beside it.
#if canImport(Glibc)
import Glibc
#endif
import MedInferCore

func now() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

// 2 FMA units x 16 lanes x 2 flops x ~3.9 GHz (AVX-512), half that with AVX2 only.
let peak = KernelDispatch.instructionSet == .avx512 ? 250.0 : 125.0
print("isa \(KernelDispatch.instructionSet.rawValue) assumed_peak_gflops \(peak)")
let sizes = CommandLine.arguments.dropFirst().compactMap { Int($0) }
for n in sizes.isEmpty ? [256, 512, 768, 1024] : sizes {
    let a = (0 ..< n * n).map { Float(($0 * 7919) % 1000) / 1000 - 0.5 }
    let b = (0 ..< n * n).map { Float(($0 * 104729) % 1000) / 1000 - 0.5 }
    var c = [Float](repeating: 0, count: n * n)
    let flops = 2.0 * Double(n) * Double(n) * Double(n)
    var best = Double.infinity
    let rounds = max(3, Int(2e9 / flops))
    a.withUnsafeBufferPointer { pa in
        b.withUnsafeBufferPointer { pb in
            c.withUnsafeMutableBufferPointer { pc in
                for _ in 0 ..< rounds {
                    let start = now()
                    sgemm(m: n, n: n, k: n, a: pa.baseAddress!, b: pb.baseAddress!, c: pc.baseAddress!)
                    best = min(best, now() - start)
                }
            }
        }
    }
    // A spot check against a plain dot product, so a wrong kernel cannot look fast.
    var expected: Float = 0
    for p in 0 ..< n { expected += a[(n / 2) * n + p] * b[p * n + n / 3] }
    let got = c[(n / 2) * n + n / 3]
    precondition(abs(got - expected) <= 1e-3 * (1 + abs(expected)), "wrong result at size \(n)")
    let gflops = flops / best / 1e9
    print("\(n) \(best) \(gflops) \(100 * gflops / peak)")
}
