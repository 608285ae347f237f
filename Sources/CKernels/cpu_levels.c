// The CPU's vector extensions (cpuid, with the OS's register state checked) and the kernel level
// in force: the widest the CPU has, capped by NORBERT_KERNELS for the process and by
// nb_kernels_force_level_this_thread for one thread (see include/ckernels.h).
#include "ckernels.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#define NB_X86 1
#endif

// ---------------------------------------------------------------- CPU features and levels

static uint32_t detect_features(void) {
    uint32_t f = 0;
#if NB_X86
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int osxsave = (c >> 27) & 1, fma = (c >> 12) & 1, avx = (c >> 28) & 1;
    if (!osxsave || !avx) return 0;
    unsigned xcr0_lo, xcr0_hi;
    __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    int ymm_os = (xcr0_lo & 0x6) == 0x6;             // SSE and AVX state
    int zmm_os = (xcr0_lo & 0xe6) == 0xe6;           // plus opmask, ZMM_Hi256, Hi16_ZMM
    int amx_os = ((xcr0_lo >> 17) & 3) == 3;         // XTILECFG, XTILEDATA
    if (!ymm_os) return 0;
    if (fma) f |= NB_CPU_FMA;
    if (__get_cpuid_max(0, 0) < 7) return f;
    __cpuid_count(7, 0, a, b, c, d);
    if ((b >> 5) & 1) f |= NB_CPU_AVX2;
    if (zmm_os) {
        if ((b >> 16) & 1) f |= NB_CPU_AVX512F;
        if ((b >> 17) & 1) f |= NB_CPU_AVX512DQ;
        if ((b >> 30) & 1) f |= NB_CPU_AVX512BW;
        if ((b >> 31) & 1) f |= NB_CPU_AVX512VL;
        if ((c >> 11) & 1) f |= NB_CPU_AVX512VNNI;
    }
    if (amx_os && ((d >> 24) & 1)) f |= NB_CPU_AMX;   // AMX-TILE
    unsigned max_sub = a;
    if (zmm_os && max_sub >= 1) {
        __cpuid_count(7, 1, a, b, c, d);
        if ((a >> 5) & 1) f |= NB_CPU_AVX512BF16;
    }
#endif
    return f;
}

static int level_of(uint32_t f) {
    const uint32_t avx2 = NB_CPU_AVX2 | NB_CPU_FMA;
    const uint32_t avx512 = avx2 | NB_CPU_AVX512F | NB_CPU_AVX512BW | NB_CPU_AVX512DQ | NB_CPU_AVX512VL;
    if ((f & avx512) == avx512) return NB_LEVEL_AVX512;
    if ((f & avx2) == avx2) return NB_LEVEL_AVX2;
    return NB_LEVEL_PORTABLE;
}

static int nb_detected = -1, nb_process = -1;
static uint32_t nb_features;
static _Thread_local int nb_thread_level = -1;

static void init_levels(void) {
    if (nb_detected >= 0) return;   // racing first calls compute the same values
    uint32_t f = detect_features();
    int detected = level_of(f);
    int process = detected;
    const char *env = getenv("NORBERT_KERNELS");
    if (env) {
        int cap = !strcmp(env, "portable") ? NB_LEVEL_PORTABLE : !strcmp(env, "avx2") ? NB_LEVEL_AVX2
                : !strcmp(env, "avx512") ? NB_LEVEL_AVX512 : detected;
        if (cap < process) process = cap;
    }
    nb_features = f;
    nb_process = process;
    __atomic_store_n(&nb_detected, detected, __ATOMIC_RELEASE);
}

uint32_t nb_cpu_features(void) { init_levels(); return nb_features; }
int nb_kernels_detected_level(void) { init_levels(); return nb_detected; }

static inline int level(void) {
    if (__builtin_expect(nb_detected < 0, 0)) init_levels();
    int t = nb_thread_level;
    return t >= 0 ? t : nb_process;
}

int nb_kernels_level(void) { return level(); }

void nb_kernels_force_level_this_thread(int l) {
    init_levels();
    nb_thread_level = l < 0 ? -1 : (l > nb_detected ? nb_detected : l);
}

int nb_kernels_vectorized(void) { return level() >= NB_LEVEL_AVX2; }
