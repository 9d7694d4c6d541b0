#ifndef MEDINFER_CPU_H
#define MEDINFER_CPU_H
/* CPU feature detection for choosing kernel variants at load time (Swift has no cpuid).
 * Internal to libmedinfer: hidden, so that the version script's medinfer_* pattern does
 * not export them (they are not part of include/medinfer.h; see include/medinfer.symbols). */
#define MEDINFER_CPU_INTERNAL __attribute__((visibility("hidden")))
/* 1 when the CPU and OS support AVX-512 F/BW/DQ/VL (x86-64-v4), else 0. */
MEDINFER_CPU_INTERNAL int medinfer_cpu_has_avx512(void);
/* 1 when the CPU and OS support AVX2 and FMA (x86-64-v3), else 0. */
MEDINFER_CPU_INTERNAL int medinfer_cpu_has_avx2_fma(void);
#endif
