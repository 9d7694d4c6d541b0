#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CMedInferCPU
import MedInferKernelsAVX512

/// Which instruction set the hot kernels use, chosen once per process from the CPU's
/// features: AVX-512 kernels (a separately compiled module) where the CPU has them,
/// else the AVX2+FMA kernels the core is built with. `MEDINFER_ISA=avx2` forces the
/// narrower path (tests run both).
public enum KernelDispatch {
    public enum InstructionSet: String, Sendable { case avx512, avx2 }

    public static let instructionSet: InstructionSet = {
        #if arch(x86_64)
        if let forced = getenv("MEDINFER_ISA"), String(cString: forced) == "avx2" { return .avx2 }
        return medinfer_cpu_has_avx512() != 0 ? .avx512 : .avx2
        #else
        return .avx2
        #endif
    }()

    /// Whether GEMMs use the AVX-512 tile (tests switch it to cover both paths).
    nonisolated(unsafe) static var wideGemm: Bool = instructionSet == .avx512
}
