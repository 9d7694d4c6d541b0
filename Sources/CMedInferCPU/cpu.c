#include "medinfer_cpu.h"

/* Three cpuid leaves and one xgetbv, read when the kernels are first chosen. Not
 * __builtin_cpu_supports: that links the compiler runtime's CPU model, whose constructor
 * runs a dozen cpuid instructions at dlopen, and each one exits to the hypervisor in a
 * virtual machine (60 us of a fresh process's start-up here). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>

/* The register state the OS saves on context switches (XCR0). */
static unsigned long long os_saved_state(void) {
  unsigned int eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return ((unsigned long long)edx << 32) | eax;
}

/* CPUID.1:ECX and CPUID.(7,0):EBX, or 0 when the CPU lacks the leaf. */
static void features(unsigned int *leaf1_ecx, unsigned int *leaf7_ebx) {
  unsigned int eax, ebx, ecx, edx;
  *leaf1_ecx = __get_cpuid(1, &eax, &ebx, &ecx, &edx) ? ecx : 0;
  *leaf7_ebx = __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) ? ebx : 0;
}

/* AVX present and its register state saved by the OS (xgetbv needs OSXSAVE). */
static int avx_state_saved(unsigned int leaf1_ecx) {
  const unsigned int osxsave = 1u << 27, avx = 1u << 28;
  return (leaf1_ecx & osxsave) && (leaf1_ecx & avx) && (os_saved_state() & 0x6) == 0x6;
}

int medinfer_cpu_has_avx512(void) {
  unsigned int leaf1_ecx, leaf7_ebx;
  features(&leaf1_ecx, &leaf7_ebx);
  const unsigned int f = 1u << 16, dq = 1u << 17, bw = 1u << 30, vl = 1u << 31;
  return avx_state_saved(leaf1_ecx) && (os_saved_state() & 0xE0) == 0xE0 /* opmask, ZMM state */
         && (leaf7_ebx & (f | dq | bw | vl)) == (f | dq | bw | vl);
}

int medinfer_cpu_has_avx2_fma(void) {
  unsigned int leaf1_ecx, leaf7_ebx;
  features(&leaf1_ecx, &leaf7_ebx);
  const unsigned int fma = 1u << 12, avx2 = 1u << 5;
  return avx_state_saved(leaf1_ecx) && (leaf1_ecx & fma) && (leaf7_ebx & avx2);
}
#else
int medinfer_cpu_has_avx512(void) { return 0; }
int medinfer_cpu_has_avx2_fma(void) { return 0; }
#endif
