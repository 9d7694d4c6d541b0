// swift-tools-version:6.0
import PackageDescription

// Release builds of the library get a modern x86-64 level (AVX2 + FMA); other
// architectures (aarch64) build with their defaults. Generic types' metadata is reached
// through direct accessor calls rather than by demangling a mangled name at first use:
// 57 demanglings of a fresh process's model load and first image, 0.2 ms, for 35 KB of code.
let metadataAccess = ["-Xfrontend", "-disable-concrete-type-metadata-mangled-name-accessors"]
#if arch(x86_64)
let releaseCodegen: [SwiftSetting] = [
    .unsafeFlags(["-Xcc", "-march=x86-64-v3", "-enforce-exclusivity=unchecked"] + metadataAccess,
                 .when(configuration: .release)),
]
// Kernels that need AVX-512 live in their own module, compiled for x86-64-v4 and
// called only when the CPU has it (chosen at load time).
let avx512Codegen: [SwiftSetting] = [
    .unsafeFlags(["-Xcc", "-march=x86-64-v4", "-enforce-exclusivity=unchecked"]),
]
#else
let avx512Codegen: [SwiftSetting] = []
let releaseCodegen: [SwiftSetting] = [
    .unsafeFlags(["-enforce-exclusivity=unchecked"] + metadataAccess, .when(configuration: .release)),
]
#endif

let package = Package(
    name: "MedInfer",
    products: [
        // libmedinfer.so: the only artefact hosts link.
        .library(name: "medinfer", type: .dynamic, targets: ["MedInfer"]),
    ],
    targets: [
        // json-c, the JSON parser the model readers use (apt: libjson-c-dev). Linked by
        // MedInferCore below, not here: statically into the release library.
        .systemLibrary(name: "CJSONC", path: "Sources/CJSONC"),
        // The public C header, imported by the ABI layer so Swift and C agree on types.
        .systemLibrary(name: "CMedInferABI", path: "include"),
        // The engine: model IR, format readers, scorers. Pure Swift, no Foundation.
        // Release builds link json-c's static archive (position-independent on Debian), so
        // libmedinfer.so has one dependency fewer to find and load: 0.2 ms of dlopen.
        .target(name: "MedInferCore", dependencies: ["CJSONC", "CMedInferCPU", "MedInferKernelsAVX512"],
                swiftSettings: releaseCodegen,
                linkerSettings: [
                    .linkedLibrary("json-c", .when(configuration: .debug)),
                    .unsafeFlags(["-Xlinker", "-l:libjson-c.a"], .when(configuration: .release)),
                ]),
        // cpuid-based feature detection (Swift cannot query the CPU itself).
        .target(name: "CMedInferCPU"),
        // The static Swift runtime's command-line lookup, replaced by one that reads
        // /proc/self/cmdline when asked instead of /proc/self/maps at every dlopen.
        .target(name: "CSwiftRuntimeOverrides",
                cSettings: [.define("MEDINFER_STATIC_SWIFT_RUNTIME", .when(configuration: .release))]),
        // GEMM micro-kernels and the fused LSTM step for AVX-512 CPUs; see KernelDispatch.swift.
        .target(name: "MedInferKernelsAVX512", swiftSettings: avx512Codegen),
        // The C ABI: argument validation, handles, status codes. Built into libmedinfer.so
        // with the Swift runtime linked in statically and only medinfer_* exported.
        .target(
            name: "MedInfer",
            dependencies: ["MedInferCore", "CMedInferABI", "CSwiftRuntimeOverrides"],
            swiftSettings: releaseCodegen,
            linkerSettings: [
                .unsafeFlags([
                    "-static-stdlib",
                    "-Xlinker", "--no-undefined",
                    "-Xlinker", "--version-script=Sources/MedInfer/exports.map",
                    "-Xlinker", "-soname=libmedinfer.so.1",
                ], .when(configuration: .release)),
            ]
        ),
        // libFuzzer target over every model reader (make fuzz); built plainly it replays
        // the committed regression inputs (make test).
        .executableTarget(name: "medinfer-fuzz-models", dependencies: ["MedInferCore"], path: "Fuzz/Models"),
        // SGEMM throughput of the GEMM kernel (Benchmarks/gemm_bench.py runs it).
        .executableTarget(name: "medinfer-bench-gemm", dependencies: ["MedInferCore"], path: "Benchmarks/Kernels",
                          swiftSettings: releaseCodegen),
        .testTarget(name: "MedInferCoreTests", dependencies: ["MedInferCore", "MedInferKernelsAVX512"]),
        .testTarget(name: "MedInferTests", dependencies: ["MedInfer", "CMedInferABI"],
                    exclude: ["Fixtures"]),
    ]
)
