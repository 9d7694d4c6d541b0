import Foundation
import XCTest
import CMedInferCPU
@testable import MedInferCore

/// Kernels/KernelDispatch.swift and CMedInferCPU: the features read with cpuid agree with
/// what the kernel reports in /proc/cpuinfo (which also accounts for the OS saving the
/// registers), so the AVX-512 kernels run exactly where they can.
final class KernelDispatchTests: XCTestCase {
    func testCpuidAgreesWithProcCpuinfo() throws {
        #if arch(x86_64) && os(Linux)
        let info = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let flagsLine = try XCTUnwrap(info.split(separator: "\n").first { $0.hasPrefix("flags") })
        let flags = Set(flagsLine.split(separator: ":")[1].split(separator: " ").map(String.init))
        let avx512 = ["avx512f", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(flags.contains)
        XCTAssertEqual(medinfer_cpu_has_avx512() != 0, avx512)
        XCTAssertEqual(medinfer_cpu_has_avx2_fma() != 0, flags.contains("avx2") && flags.contains("fma"))
        if ProcessInfo.processInfo.environment["MEDINFER_ISA"] == nil {
            XCTAssertEqual(KernelDispatch.instructionSet, avx512 ? .avx512 : .avx2)
        }
        #endif
    }
}
