#include "ckernels.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

// Mixes and norms round as written: no multiply-add contraction outside explicit FMA intrinsics,
// so every variant rounds the mixes exactly as the portable C does.
#pragma STDC FP_CONTRACT OFF

// The AVX2 + FMA variants of the element-wise kernels (see kernels_variants.h).
#include "kernels_variants.h"

#if NB_X86
#include <immintrin.h>

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

NB_AVX2 void nbv_exp_avx2(float *out, const float *x, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, exp8(_mm256_loadu_ps(x + i)));
    for (; i < n; i++) out[i] = exp_scalar(x[i]);
}

NB_AVX2 void nbv_norm_row_avx2(float *o, const float *x, size_t n, float eps, const float *g) {
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

NB_AVX2 void nbv_geglu_avx2(float *out, const float *x, const float *gate, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), gelu8(_mm256_loadu_ps(gate + i))));
    for (; i < n; i++) out[i] = x[i] * gelu_scalar(gate[i]);
}

NB_AVX2 void nbv_gelu_avx2(float *x, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, gelu8(_mm256_loadu_ps(x + i)));
    for (; i < n; i++) x[i] = gelu_scalar(x[i]);
}

NB_AVX2 float nbv_softmax_chunk_avx2(float *row, size_t a, size_t b, float old_max, float *sum_out) {
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
NB_AVX2 void nbv_scaled_mix_add_avx2(float *out, float s, float a, const float *x, float b, const float *y,
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

NB_AVX2 void nbv_add_avx2(float *out, const float *x, const float *y, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 m = _mm256_add_ps(_mm256_loadu_ps(out + i), _mm256_loadu_ps(x + i));
        if (y) m = _mm256_add_ps(m, _mm256_loadu_ps(y + i));
        _mm256_storeu_ps(out + i, m);
    }
    for (; i < n; i++) out[i] = y ? (out[i] + x[i]) + y[i] : out[i] + x[i];
}

NB_AVX2 void nbv_scale_avx2(float *out, float s, size_t n) {
    __m256 vs = _mm256_set1_ps(s);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(out + i), vs));
    for (; i < n; i++) out[i] *= s;
}

NB_AVX2 void nbv_rope_avx2(float *v, size_t half, const float *c, const float *s) {
    size_t j = 0;
    for (; j + 8 <= half; j += 8) {
        __m256 x1 = _mm256_loadu_ps(v + j), x2 = _mm256_loadu_ps(v + j + half);
        __m256 vc = _mm256_loadu_ps(c + j), vs = _mm256_loadu_ps(s + j);
        _mm256_storeu_ps(v + j, _mm256_sub_ps(_mm256_mul_ps(x1, vc), _mm256_mul_ps(x2, vs)));
        _mm256_storeu_ps(v + j + half, _mm256_add_ps(_mm256_mul_ps(x2, vc), _mm256_mul_ps(x1, vs)));
    }
    if (j < half) rope_scalar(v + j, half, c + j, s + j);   // never reached for d % 16 == 0
}
#endif
