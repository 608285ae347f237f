#include "ckernels.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

// Mixes and norms round as written: no multiply-add contraction outside explicit FMA intrinsics,
// so every variant rounds the mixes exactly as the portable C does.
#pragma STDC FP_CONTRACT OFF

// The AVX-512 variants of the element-wise kernels and of the bf16 rounding (see
// kernels_variants.h).
#include "kernels_variants.h"

#if NB_X86
#include <immintrin.h>

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

NB_AVX512 void nbv_exp_avx512(float *out, const float *x, size_t n) {
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

NB_AVX512 void nbv_norm_row_avx512(float *o, const float *x, size_t n, float eps, const float *g) {
    norm_rows_avx512(1, &o, &x, n, eps, &g);
}

/// count rows (any number) through norm_rows_avx512, four at a time.
NB_AVX512 void nbv_norm_many_avx512(size_t count, float *const *os, const float *const *xs, size_t n, float eps,
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

NB_AVX512 void nbv_geglu_avx512(float *out, const float *x, const float *gate, size_t n) {
    for (size_t i = 0; i < n; i += 16) {
        size_t left = n - i; __mmask16 k = tail16(left); (void)k;
        __m512 y = _mm512_mul_ps(ldm(left, x + i), gelu16(ldm(left, gate + i)));
        stm(left, out + i, y);
    }
}

NB_AVX512 void nbv_gelu_avx512(float *x, size_t n) {
    for (size_t i = 0; i < n; i += 16) {
        size_t left = n - i; __mmask16 k = tail16(left); (void)k;
        stm(left, x + i, gelu16(ldm(left, x + i)));
    }
}

NB_AVX512 float nbv_softmax_chunk_avx512(float *row, size_t a, size_t b, float old_max, float *sum_out) {
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

NB_AVX512 void nbv_scaled_mix_add_avx512(float *out, float s, float a, const float *x, float b, const float *y,
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

NB_AVX512 void nbv_add_avx512(float *out, const float *x, const float *y, size_t n) {
    for (size_t i = 0; i < n; i += 16) {
        size_t left = n - i; __mmask16 k = tail16(left); (void)k;
        __m512 m = _mm512_add_ps(ldm(left, out + i), ldm(left, x + i));
        if (y) m = _mm512_add_ps(m, ldm(left, y + i));
        stm(left, out + i, m);
    }
}

NB_AVX512 void nbv_scale_avx512(float *out, float s, size_t n) {
    __m512 vs = _mm512_set1_ps(s);
    for (size_t i = 0; i < n; i += 16) {
        size_t left = n - i; __mmask16 k = tail16(left); (void)k;
        stm(left, out + i, _mm512_mul_ps(ldm(left, out + i), vs));
    }
}

NB_AVX512 void nbv_rope_avx512(float *v, size_t half, const float *c, const float *s) {
    for (size_t j = 0; j < half; j += 16) {
        size_t left = half - j; __mmask16 k = tail16(left); (void)k;
        __m512 x1 = ldm(left, v + j), x2 = ldm(left, v + j + half);
        __m512 vc = ldm(left, c + j), vs = ldm(left, s + j);
        stm(left, v + j, _mm512_sub_ps(_mm512_mul_ps(x1, vc), _mm512_mul_ps(x2, vs)));
        stm(left, v + j + half, _mm512_add_ps(_mm512_mul_ps(x2, vc), _mm512_mul_ps(x1, vs)));
    }
}

NB_AVX512 void nbv_to_bf16_avx512(uint16_t *out, const float *x, size_t n) {
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
