#include "ckernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

// Mixes and norms round as written: no multiply-add contraction outside explicit FMA intrinsics,
// so every variant rounds the mixes exactly as the portable C does.
#pragma STDC FP_CONTRACT OFF

#if defined(__x86_64__)
#include <immintrin.h>
#include <cpuid.h>
#define NB_X86 1
#define NB_AVX2 __attribute__((target("avx2,fma")))
#define NB_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")))
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

// ---------------------------------------------------------------- scalar reference paths

static inline float exp_scalar(float x) {
    if (x < -87.33654f) x = -87.33654f;
    if (x > 88.37626f) x = 88.37626f;
    return expf(x);
}

static inline float gelu_scalar(float x) {
    float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
    return 0.5f * x * (1.0f + tanhf(u));
}

static void norm_row_scalar(float *o, const float *x, size_t n, float eps, const float *g) {
    float sum = 0;
    for (size_t i = 0; i < n; i++) sum += x[i];
    float mean = sum / (float)n, ss = 0;
    for (size_t i = 0; i < n; i++) { float d = x[i] - mean; ss += d * d; }
    float inv = 1.0f / sqrtf(ss / (float)n + eps);
    for (size_t i = 0; i < n; i++) o[i] = (x[i] - mean) * inv * (g ? g[i] : 1.0f);
}

static void rope_scalar(float *v, size_t half, const float *c, const float *s) {
    for (size_t j = 0; j < half; j++) {
        float x1 = v[j], x2 = v[j + half];
        v[j] = x1 * c[j] - x2 * s[j];
        v[j + half] = x2 * c[j] + x1 * s[j];
    }
}

static float softmax_scalar(float *row, size_t a, size_t b, float old_max, float *sum_out) {
    float mx = old_max, sum = 0;
    for (size_t i = a; i < b; i++) if (row[i] > mx) mx = row[i];
    for (size_t i = a; i < b; i++) { float e = exp_scalar(row[i] - mx); row[i] = e; sum += e; }
    *sum_out = sum;
    return mx;
}

#if NB_X86
// ---------------------------------------------------------------- AVX2 + FMA paths (8 lanes)

NB_AVX2 static inline __m256 exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.33654f)), _mm256_set1_ps(88.37626f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.442695040888963f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

NB_AVX2 static inline __m256 gelu8(__m256 x) {
    __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
    __m256 u = _mm256_mul_ps(_mm256_set1_ps(0.7978845608028654f), _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), x3, x));
    // tanh(u) = 1 - 2 / (e^{2u} + 1)
    __m256 e = exp8(_mm256_add_ps(u, u));
    __m256 t = _mm256_sub_ps(_mm256_set1_ps(1.0f), _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, _mm256_set1_ps(1.0f))));
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), _mm256_add_ps(_mm256_set1_ps(1.0f), t));
}

NB_AVX2 static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

NB_AVX2 static inline float hmax8(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

NB_AVX2 static void exp_avx2(float *out, const float *x, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, exp8(_mm256_loadu_ps(x + i)));
    for (; i < n; i++) out[i] = exp_scalar(x[i]);
}

NB_AVX2 static void norm_row_avx2(float *o, const float *x, size_t n, float eps, const float *g) {
    __m256 acc = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) acc = _mm256_add_ps(acc, _mm256_loadu_ps(x + i));
    float sum = hsum8(acc);
    for (; i < n; i++) sum += x[i];
    float mean = sum / (float)n;
    __m256 m = _mm256_set1_ps(mean);
    acc = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + i), m);
        acc = _mm256_fmadd_ps(d, d, acc);
    }
    float ss = hsum8(acc);
    for (; i < n; i++) { float d = x[i] - mean; ss += d * d; }
    float inv = 1.0f / sqrtf(ss / (float)n + eps);
    __m256 vi = _mm256_set1_ps(inv);
    i = 0;
    if (g) {
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(o + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), m), vi), _mm256_loadu_ps(g + i)));
        for (; i < n; i++) o[i] = (x[i] - mean) * inv * g[i];
    } else {
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(o + i, _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), m), vi));
        for (; i < n; i++) o[i] = (x[i] - mean) * inv;
    }
}

NB_AVX2 static void geglu_avx2(float *out, const float *x, const float *gate, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), gelu8(_mm256_loadu_ps(gate + i))));
    for (; i < n; i++) out[i] = x[i] * gelu_scalar(gate[i]);
}

NB_AVX2 static void gelu_avx2(float *x, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, gelu8(_mm256_loadu_ps(x + i)));
    for (; i < n; i++) x[i] = gelu_scalar(x[i]);
}

NB_AVX2 static float softmax_chunk_avx2(float *row, size_t a, size_t b, float old_max, float *sum_out) {
    size_t i = a;
    float mx = old_max;
    if (b - a >= 8) {
        __m256 vm = _mm256_set1_ps(old_max);
        for (; i + 8 <= b; i += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(row + i));
        mx = hmax8(vm);
    }
    for (; i < b; i++) if (row[i] > mx) mx = row[i];
    __m256 vm = _mm256_set1_ps(mx), acc = _mm256_setzero_ps();
    i = a;
    for (; i + 8 <= b; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(row + i), vm));
        _mm256_storeu_ps(row + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    float s = hsum8(acc);
    for (; i < b; i++) { float e = exp_scalar(row[i] - mx); row[i] = e; s += e; }
    *sum_out = s;
    return mx;
}

// Mixes round as the scalar code does: separate multiplies and adds, no fused multiply-add.
NB_AVX2 static void scaled_mix_add_avx2(float *out, float s, float a, const float *x, float b, const float *y,
                                        const float *p, const float *q, size_t n) {
    __m256 vs = _mm256_set1_ps(s), va = _mm256_set1_ps(a), vb = _mm256_set1_ps(b);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 m = _mm256_add_ps(_mm256_mul_ps(va, _mm256_loadu_ps(x + i)), _mm256_mul_ps(vb, _mm256_loadu_ps(y + i)));
        if (s != 1.0f) m = _mm256_mul_ps(vs, m);
        if (p) m = _mm256_add_ps(m, _mm256_loadu_ps(p + i));
        if (q) m = _mm256_add_ps(m, _mm256_loadu_ps(q + i));
        _mm256_storeu_ps(out + i, m);
    }
    for (; i < n; i++) {
        float m = a * x[i] + b * y[i];
        if (s != 1.0f) m = s * m;
        if (p) m = m + p[i];
        if (q) m = m + q[i];
        out[i] = m;
    }
}

NB_AVX2 static void add_avx2(float *out, const float *x, const float *y, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 m = _mm256_add_ps(_mm256_loadu_ps(out + i), _mm256_loadu_ps(x + i));
        if (y) m = _mm256_add_ps(m, _mm256_loadu_ps(y + i));
        _mm256_storeu_ps(out + i, m);
    }
    for (; i < n; i++) out[i] = y ? (out[i] + x[i]) + y[i] : out[i] + x[i];
}

NB_AVX2 static void scale_avx2(float *out, float s, size_t n) {
    __m256 vs = _mm256_set1_ps(s);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(out + i), vs));
    for (; i < n; i++) out[i] *= s;
}

NB_AVX2 static void rope_avx2(float *v, size_t half, const float *c, const float *s) {
    size_t j = 0;
    for (; j + 8 <= half; j += 8) {
        __m256 x1 = _mm256_loadu_ps(v + j), x2 = _mm256_loadu_ps(v + j + half);
        __m256 vc = _mm256_loadu_ps(c + j), vs = _mm256_loadu_ps(s + j);
        _mm256_storeu_ps(v + j, _mm256_sub_ps(_mm256_mul_ps(x1, vc), _mm256_mul_ps(x2, vs)));
        _mm256_storeu_ps(v + j + half, _mm256_add_ps(_mm256_mul_ps(x2, vc), _mm256_mul_ps(x1, vs)));
    }
    if (j < half) rope_scalar(v + j, half, c + j, s + j);   // never reached for d % 16 == 0
}

// ---------------------------------------------------------------- AVX-512 paths (16 lanes, masked tails)

NB_AVX512 static inline __mmask16 tail16(size_t left) {
    return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
}

// Full-width loads and stores while 16 or more values are left, masked ones only for the tail:
// masked stores of every vector are slow on some CPUs (AMD Zen), so the hot loop has none.
NB_AVX512 static inline __m512 ldm(size_t left, const float *p) {
    return left >= 16 ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(tail16(left), p);
}
NB_AVX512 static inline void stm(size_t left, float *p, __m512 v) {
    if (left >= 16) _mm512_storeu_ps(p, v); else _mm512_mask_storeu_ps(p, tail16(left), v);
}

NB_AVX512 static inline __m512 exp16(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.33654f)), _mm512_set1_ps(88.37626f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.442695040888963f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
}

// GELU (tanh form) as x / (1 + e^{-2u}), u = √(2/π)(x + 0.044715x³): the same function as
// 0.5x(1 + tanh u), with one exponential and a reciprocal (rcp14 and one Newton step, ~2⁻²⁸
// relative, instead of a division: the division was the slowest part of GeGLU).
NB_AVX512 static inline __m512 gelu16(__m512 x) {
    __m512 x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
    __m512 u = _mm512_mul_ps(_mm512_set1_ps(-1.5957691216057308f), _mm512_fmadd_ps(_mm512_set1_ps(0.044715f), x3, x));
    __m512 d = _mm512_add_ps(exp16(u), _mm512_set1_ps(1.0f));
    __m512 r = _mm512_rcp14_ps(d);
    r = _mm512_mul_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(2.0f)));
    return _mm512_mul_ps(x, r);
}

NB_AVX512 static void exp_avx512(float *out, const float *x, size_t n) {
    for (size_t i = 0; i < n; i += 16) {
        size_t left = n - i; __mmask16 k = tail16(left); (void)k;
        stm(left, out + i, exp16(ldm(left, x + i)));
    }
}

// LayerNorm of R rows at once (R ≤ 4, a constant once inlined): row r from xs[r] into os[r] (in
// place allowed), times gs[r] when given. Two passes per row (mean, then centred sum of squares),
// as the other variants; each row's sums run in exactly the order of one row alone, so the result
// does not depend on R. Several rows per call let their reduction chains (two horizontal sums, a
// square root) overlap: 4 rows measured ~1.5x one row at a time (n = 64…640).
NB_AVX512 static inline __attribute__((always_inline)) void norm_rows_avx512(
    const int R, float *const *os, const float *const *xs, size_t n, float eps, const float *const *gs) {
    __m512 a0[4], a1[4], m[4], vi[4];
    for (int r = 0; r < R; r++) { a0[r] = _mm512_setzero_ps(); a1[r] = _mm512_setzero_ps(); }
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int r = 0; r < R; r++) {
            a0[r] = _mm512_add_ps(a0[r], _mm512_loadu_ps(xs[r] + i));
            a1[r] = _mm512_add_ps(a1[r], _mm512_loadu_ps(xs[r] + i + 16));
        }
    for (; i < n; i += 16)
        for (int r = 0; r < R; r++) a0[r] = _mm512_add_ps(a0[r], _mm512_maskz_loadu_ps(tail16(n - i), xs[r] + i));
    for (int r = 0; r < R; r++) {
        m[r] = _mm512_set1_ps(_mm512_reduce_add_ps(_mm512_add_ps(a0[r], a1[r])) / (float)n);
        a0[r] = _mm512_setzero_ps(); a1[r] = _mm512_setzero_ps();
    }
    for (i = 0; i + 32 <= n; i += 32)
        for (int r = 0; r < R; r++) {
            __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(xs[r] + i), m[r]);
            __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(xs[r] + i + 16), m[r]);
            a0[r] = _mm512_fmadd_ps(d0, d0, a0[r]);
            a1[r] = _mm512_fmadd_ps(d1, d1, a1[r]);
        }
    for (; i < n; i += 16)
        for (int r = 0; r < R; r++) {
            size_t left = n - i;
            __m512 d = _mm512_maskz_sub_ps(tail16(left), ldm(left, xs[r] + i), m[r]);
            a0[r] = _mm512_fmadd_ps(d, d, a0[r]);
        }
    for (int r = 0; r < R; r++) {
        float ss = _mm512_reduce_add_ps(_mm512_add_ps(a0[r], a1[r]));
        vi[r] = _mm512_set1_ps(1.0f / sqrtf(ss / (float)n + eps));
    }
    for (i = 0; i < n; i += 16) {
        size_t left = n - i;
        for (int r = 0; r < R; r++) {
            __m512 y = _mm512_mul_ps(_mm512_sub_ps(ldm(left, xs[r] + i), m[r]), vi[r]);
            if (gs[r]) y = _mm512_mul_ps(y, ldm(left, gs[r] + i));
            stm(left, os[r] + i, y);
        }
    }
}

NB_AVX512 static void norm_row_avx512(float *o, const float *x, size_t n, float eps, const float *g) {
    norm_rows_avx512(1, &o, &x, n, eps, &g);
}

/// count rows (any number) through norm_rows_avx512, four at a time.
NB_AVX512 static void norm_many_avx512(size_t count, float *const *os, const float *const *xs, size_t n, float eps,
                                       const float *const *gs) {
    size_t r = 0;
    for (; r + 4 <= count; r += 4) norm_rows_avx512(4, os + r, xs + r, n, eps, gs + r);
    switch (count - r) {
    case 3: norm_rows_avx512(3, os + r, xs + r, n, eps, gs + r); break;
    case 2: norm_rows_avx512(2, os + r, xs + r, n, eps, gs + r); break;
    case 1: norm_rows_avx512(1, os + r, xs + r, n, eps, gs + r); break;
    default: break;
    }
}

NB_AVX512 static void geglu_avx512(float *out, const float *x, const float *gate, size_t n) {
    for (size_t i = 0; i < n; i += 16) {
        size_t left = n - i; __mmask16 k = tail16(left); (void)k;
        __m512 y = _mm512_mul_ps(ldm(left, x + i), gelu16(ldm(left, gate + i)));
        stm(left, out + i, y);
    }
}

NB_AVX512 static void gelu_avx512(float *x, size_t n) {
    for (size_t i = 0; i < n; i += 16) {
        size_t left = n - i; __mmask16 k = tail16(left); (void)k;
        stm(left, x + i, gelu16(ldm(left, x + i)));
    }
}

NB_AVX512 static float softmax_chunk_avx512(float *row, size_t a, size_t b, float old_max, float *sum_out) {
    __m512 vm = _mm512_set1_ps(old_max);
    for (size_t i = a; i < b; i += 16)
        vm = _mm512_mask_max_ps(vm, tail16(b - i), vm, ldm(b - i, row + i));
    float mx = _mm512_reduce_max_ps(vm);
    vm = _mm512_set1_ps(mx);
    __m512 acc = _mm512_setzero_ps();
    for (size_t i = a; i < b; i += 16) {
        size_t left = b - i; __mmask16 k = tail16(left); (void)k;
        __m512 e = _mm512_maskz_mov_ps(k, exp16(_mm512_sub_ps(ldm(left, row + i), vm)));
        stm(left, row + i, e);
        acc = _mm512_add_ps(acc, e);
    }
    *sum_out = _mm512_reduce_add_ps(acc);
    return mx;
}

NB_AVX512 static void scaled_mix_add_avx512(float *out, float s, float a, const float *x, float b, const float *y,
                                            const float *p, const float *q, size_t n) {
    __m512 vs = _mm512_set1_ps(s), va = _mm512_set1_ps(a), vb = _mm512_set1_ps(b);
    for (size_t i = 0; i < n; i += 16) {
        size_t left = n - i; __mmask16 k = tail16(left); (void)k;
        __m512 m = _mm512_add_ps(_mm512_mul_ps(va, ldm(left, x + i)), _mm512_mul_ps(vb, ldm(left, y + i)));
        if (s != 1.0f) m = _mm512_mul_ps(vs, m);
        if (p) m = _mm512_add_ps(m, ldm(left, p + i));
        if (q) m = _mm512_add_ps(m, ldm(left, q + i));
        stm(left, out + i, m);
    }
}

NB_AVX512 static void add_avx512(float *out, const float *x, const float *y, size_t n) {
    for (size_t i = 0; i < n; i += 16) {
        size_t left = n - i; __mmask16 k = tail16(left); (void)k;
        __m512 m = _mm512_add_ps(ldm(left, out + i), ldm(left, x + i));
        if (y) m = _mm512_add_ps(m, ldm(left, y + i));
        stm(left, out + i, m);
    }
}

NB_AVX512 static void scale_avx512(float *out, float s, size_t n) {
    __m512 vs = _mm512_set1_ps(s);
    for (size_t i = 0; i < n; i += 16) {
        size_t left = n - i; __mmask16 k = tail16(left); (void)k;
        stm(left, out + i, _mm512_mul_ps(ldm(left, out + i), vs));
    }
}

NB_AVX512 static void rope_avx512(float *v, size_t half, const float *c, const float *s) {
    for (size_t j = 0; j < half; j += 16) {
        size_t left = half - j; __mmask16 k = tail16(left); (void)k;
        __m512 x1 = ldm(left, v + j), x2 = ldm(left, v + j + half);
        __m512 vc = ldm(left, c + j), vs = ldm(left, s + j);
        stm(left, v + j, _mm512_sub_ps(_mm512_mul_ps(x1, vc), _mm512_mul_ps(x2, vs)));
        stm(left, v + j + half, _mm512_add_ps(_mm512_mul_ps(x2, vc), _mm512_mul_ps(x1, vs)));
    }
}
#endif

// ---------------------------------------------------------------- dispatch helpers

static inline void norm_row_at(int l, float *o, const float *x, size_t n, float eps, const float *g) {
#if NB_X86
    if (l >= NB_LEVEL_AVX512) { norm_row_avx512(o, x, n, eps, g); return; }
    if (l >= NB_LEVEL_AVX2) { norm_row_avx2(o, x, n, eps, g); return; }
#endif
    (void)l;
    norm_row_scalar(o, x, n, eps, g);
}

/// Rows handed to norm_group_at at a time.
#define NB_GROUP 4

/// LayerNorm of count ≤ NB_GROUP rows, xs[r] into os[r] (in place allowed) times gs[r] when
/// given: together where the level has a several-row kernel (the same result as row by row).
static inline void norm_group_at(int l, size_t count, float *const *os, const float *const *xs, size_t n, float eps,
                                 const float *const *gs) {
#if NB_X86
    if (l >= NB_LEVEL_AVX512) { norm_many_avx512(count, os, xs, n, eps, gs); return; }
#endif
    for (size_t r = 0; r < count; r++) norm_row_at(l, os[r], xs[r], n, eps, gs[r]);
}

static inline void rope_at(int l, float *v, size_t half, const float *c, const float *s) {
#if NB_X86
    if (l >= NB_LEVEL_AVX512) { rope_avx512(v, half, c, s); return; }
    if (l >= NB_LEVEL_AVX2) { rope_avx2(v, half, c, s); return; }
#endif
    (void)l;
    rope_scalar(v, half, c, s);
}

static void scaled_mix_add_at(int l, float *out, float s, float a, const float *x, float b, const float *y,
                              const float *p, const float *q, size_t n) {
#if NB_X86
    if (l >= NB_LEVEL_AVX512) { scaled_mix_add_avx512(out, s, a, x, b, y, p, q, n); return; }
    if (l >= NB_LEVEL_AVX2) { scaled_mix_add_avx2(out, s, a, x, b, y, p, q, n); return; }
#endif
    (void)l;
    for (size_t i = 0; i < n; i++) {
        float m = a * x[i] + b * y[i];
        if (s != 1.0f) m = s * m;
        if (p) m = m + p[i];
        if (q) m = m + q[i];
        out[i] = m;
    }
}

// ---------------------------------------------------------------- public entry points

void nb_exp(float *out, const float *x, size_t n) {
    int l = level();
#if NB_X86
    if (l >= NB_LEVEL_AVX512) { exp_avx512(out, x, n); return; }
    if (l >= NB_LEVEL_AVX2) { exp_avx2(out, x, n); return; }
#endif
    (void)l;
    for (size_t i = 0; i < n; i++) out[i] = exp_scalar(x[i]);
}

void nb_layer_norm(float *out, size_t ldo, const float *x, size_t ldx, size_t rows, size_t cols,
                   float eps, const float *gain) {
    int l = level();
    for (size_t r0 = 0; r0 < rows; r0 += NB_GROUP) {
        size_t count = rows - r0 < NB_GROUP ? rows - r0 : NB_GROUP;
        float *os[NB_GROUP];
        const float *xs[NB_GROUP], *gs[NB_GROUP];
        for (size_t r = 0; r < count; r++) { os[r] = out + (r0 + r) * ldo; xs[r] = x + (r0 + r) * ldx; gs[r] = gain; }
        norm_group_at(l, count, os, xs, cols, eps, gs);
    }
}

void nb_mix_layer_norm(float *out, float s, float a, const float *x, float b, const float *y,
                       const float *p, size_t rows, size_t cols, float eps) {
    int l = level();
    for (size_t r0 = 0; r0 < rows; r0 += NB_GROUP) {
        size_t count = rows - r0 < NB_GROUP ? rows - r0 : NB_GROUP;
        float *os[NB_GROUP];
        const float *xs[NB_GROUP], *gs[NB_GROUP] = {NULL, NULL, NULL, NULL};
        // The rows are mixed into `out` (still in L1 for the norm that follows): one pass less
        // over memory than mixing the whole matrix first.
        for (size_t r = 0; r < count; r++) {
            size_t at = (r0 + r) * cols;
            os[r] = out + at;
            xs[r] = os[r];
            scaled_mix_add_at(l, os[r], s, a, x + at, b, y + at, p ? p + at : NULL, NULL, cols);
        }
        norm_group_at(l, count, os, xs, cols, eps, gs);
    }
}

static inline void geglu_row_at(int l, float *o, const float *x, const float *gate, size_t inter) {
#if NB_X86
    if (l >= NB_LEVEL_AVX512) { geglu_avx512(o, x, gate, inter); return; }
    if (l >= NB_LEVEL_AVX2) { geglu_avx2(o, x, gate, inter); return; }
#endif
    (void)l;
    for (size_t i = 0; i < inter; i++) o[i] = x[i] * gelu_scalar(gate[i]);
}

void nb_geglu_rows(float *out, const float *up, size_t rows, size_t inter) {
    int l = level();
    for (size_t r = 0; r < rows; r++) {
        const float *x = up + r * 2 * inter;
        geglu_row_at(l, out + r * inter, x, x + inter, inter);
    }
}

void nb_geglu_norm_rows(float *out, const float *up, size_t rows, size_t inter, float eps) {
    int l = level();
    for (size_t r0 = 0; r0 < rows; r0 += NB_GROUP) {
        size_t count = rows - r0 < NB_GROUP ? rows - r0 : NB_GROUP;
        float *os[NB_GROUP];
        const float *xs[NB_GROUP], *gs[NB_GROUP] = {NULL, NULL, NULL, NULL};
        for (size_t r = 0; r < count; r++) {
            const float *x = up + (r0 + r) * 2 * inter;
            os[r] = out + (r0 + r) * inter;
            xs[r] = os[r];
            geglu_row_at(l, os[r], x, x + inter, inter);
        }
        norm_group_at(l, count, os, xs, inter, eps, gs);
    }
}

void nb_gelu(float *x, size_t n) {
    int l = level();
#if NB_X86
    if (l >= NB_LEVEL_AVX512) { gelu_avx512(x, n); return; }
    if (l >= NB_LEVEL_AVX2) { gelu_avx2(x, n); return; }
#endif
    (void)l;
    for (size_t i = 0; i < n; i++) x[i] = gelu_scalar(x[i]);
}

void nb_scaled_mix(float *out, float s, float a, const float *x, float b, const float *y, size_t n) {
    scaled_mix_add_at(level(), out, s, a, x, b, y, NULL, NULL, n);
}

void nb_scaled_mix_add(float *out, float s, float a, const float *x, float b, const float *y,
                       const float *p, const float *q, size_t n) {
    scaled_mix_add_at(level(), out, s, a, x, b, y, p, q, n);
}

void nb_add(float *out, const float *x, const float *y, size_t n) {
    int l = level();
#if NB_X86
    if (l >= NB_LEVEL_AVX512) { add_avx512(out, x, y, n); return; }
    if (l >= NB_LEVEL_AVX2) { add_avx2(out, x, y, n); return; }
#endif
    (void)l;
    if (y) { for (size_t i = 0; i < n; i++) out[i] = (out[i] + x[i]) + y[i]; }
    else { for (size_t i = 0; i < n; i++) out[i] += x[i]; }
}

void nb_scale(float *out, float s, size_t n) {
    int l = level();
#if NB_X86
    if (l >= NB_LEVEL_AVX512) { scale_avx512(out, s, n); return; }
    if (l >= NB_LEVEL_AVX2) { scale_avx2(out, s, n); return; }
#endif
    (void)l;
    for (size_t i = 0; i < n; i++) out[i] *= s;
}

static inline void head_norm_rope_at(int l, float *x, size_t heads, size_t d, const float *gain,
                                     const float *c, const float *s, float eps) {
    size_t half = d / 2;
    for (size_t h = 0; h < heads; h++) {
        float *v = x + h * d;
        norm_row_at(l, v, v, d, eps, gain + h * d);
        rope_at(l, v, half, c, s);
    }
}

void nb_head_norm_rope(float *x, size_t heads, size_t d, const float *gain,
                       const float *c, const float *s, float eps) {
    head_norm_rope_at(level(), x, heads, d, gain, c, s, eps);
}

void nb_qk_norm_rope_rows(float *qk, size_t ld, size_t rows, size_t heads, size_t d,
                          const float *qgain, const float *kgain,
                          const float *cos_rows, const float *sin_rows, float eps) {
    int l = level();
    size_t half = d / 2, parts = 2 * heads;   // a row: heads queries, then heads keys, d each
    for (size_t t = 0; t < rows; t++) {
        float *row = qk + t * ld;
        const float *c = cos_rows + t * half, *s = sin_rows + t * half;
        // Each head normed (several at once), then rotated: as head_norm_rope_at, head by head.
        for (size_t j0 = 0; j0 < parts; j0 += NB_GROUP) {
            size_t count = parts - j0 < NB_GROUP ? parts - j0 : NB_GROUP;
            float *os[NB_GROUP];
            const float *xs[NB_GROUP], *gs[NB_GROUP];
            for (size_t j = 0; j < count; j++) {
                size_t part = j0 + j;
                os[j] = row + part * d;
                xs[j] = os[j];
                gs[j] = part < heads ? qgain + part * d : kgain + (part - heads) * d;
            }
            norm_group_at(l, count, os, xs, d, eps, gs);
            for (size_t j = 0; j < count; j++) rope_at(l, os[j], half, c, s);
        }
    }
}

static inline float softmax_at(int l, float *row, size_t a, size_t b, float old, float *sum) {
#if NB_X86
    if (l >= NB_LEVEL_AVX512) return softmax_chunk_avx512(row, a, b, old, sum);
    if (l >= NB_LEVEL_AVX2) return softmax_chunk_avx2(row, a, b, old, sum);
#endif
    (void)l;
    return softmax_scalar(row, a, b, old, sum);
}

float nb_softmax_chunk_row(float *row, size_t cols, size_t a, size_t b, float *row_max, float *row_sum) {
    if (a > 0) memset(row, 0, a * sizeof(float));
    if (b < cols) memset(row + b, 0, (cols - b) * sizeof(float));
    if (a >= b) return 1.0f;
    float old = *row_max, sum = 0;
    float mx = softmax_at(level(), row, a, b, old, &sum);
    float factor = (old == -INFINITY) ? 0.0f : (old == mx ? 1.0f : exp_scalar(old - mx));
    *row_sum = *row_sum * factor + sum;
    *row_max = mx;
    return factor;
}

void nb_softmax_row(float *row, size_t cols, size_t a, size_t b) {
    if (a > 0) memset(row, 0, a * sizeof(float));
    if (b < cols) memset(row + b, 0, (cols - b) * sizeof(float));
    if (a >= b) return;
    int l = level();
    float sum = 0;
    softmax_at(l, row, a, b, -INFINITY, &sum);
    nb_scale(row + a, 1.0f / sum, b - a);
}

// ---------------------------------------------------------------- float32 → bfloat16

static inline uint16_t bf16_scalar(float x) {
    uint32_t b;
    memcpy(&b, &x, 4);
    if ((b & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((b >> 16) | 0x40);   // quiet NaN
    return (uint16_t)((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
}

#if NB_X86
NB_AVX512 static void to_bf16_avx512(uint16_t *out, const float *x, size_t n) {
    const __m512i half = _mm512_set1_epi32(0x7fff), one = _mm512_set1_epi32(1);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 k = tail16(n - i);
        __m512 v = _mm512_maskz_loadu_ps(k, x + i);
        __m512i b = _mm512_castps_si512(v);
        __m512i r = _mm512_add_epi32(b, _mm512_add_epi32(half, _mm512_and_si512(_mm512_srli_epi32(b, 16), one)));
        r = _mm512_srli_epi32(r, 16);
        __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(0x40)));
        _mm256_mask_storeu_epi16(out + i, k, _mm512_cvtepi32_epi16(r));
    }
}
#endif

void nb_to_bf16(uint16_t *out, const float *x, size_t n) {
#if NB_X86
    if (level() >= NB_LEVEL_AVX512) { to_bf16_avx512(out, x, n); return; }
#endif
    for (size_t i = 0; i < n; i++) out[i] = bf16_scalar(x[i]);
}
