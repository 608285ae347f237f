#include "ckernels.h"

#include <math.h>
#include <string.h>
#include <stdint.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define NB_X86 1
#define NB_AVX2 __attribute__((target("avx2,fma")))
#endif

static int nb_has_avx2 = -1;

static int vectorized(void) {
#if NB_X86
    if (nb_has_avx2 < 0) {
        __builtin_cpu_init();
        nb_has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return nb_has_avx2;
#else
    return 0;
#endif
}

int nb_kernels_vectorized(void) { return vectorized(); }

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

#if NB_X86
// ---------------------------------------------------------------- AVX2 + FMA paths

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
#endif

// ---------------------------------------------------------------- public entry points

void nb_exp(float *out, const float *x, size_t n) {
#if NB_X86
    if (vectorized()) { exp_avx2(out, x, n); return; }
#endif
    for (size_t i = 0; i < n; i++) out[i] = exp_scalar(x[i]);
}

static void norm_row_scalar(float *o, const float *x, size_t n, float eps, const float *g) {
    float sum = 0;
    for (size_t i = 0; i < n; i++) sum += x[i];
    float mean = sum / (float)n, ss = 0;
    for (size_t i = 0; i < n; i++) { float d = x[i] - mean; ss += d * d; }
    float inv = 1.0f / sqrtf(ss / (float)n + eps);
    for (size_t i = 0; i < n; i++) o[i] = (x[i] - mean) * inv * (g ? g[i] : 1.0f);
}

static inline void norm_row(float *o, const float *x, size_t n, float eps, const float *g) {
#if NB_X86
    if (vectorized()) { norm_row_avx2(o, x, n, eps, g); return; }
#endif
    norm_row_scalar(o, x, n, eps, g);
}

void nb_layer_norm(float *out, size_t ldo, const float *x, size_t ldx, size_t rows, size_t cols,
                   float eps, const float *gain) {
    for (size_t r = 0; r < rows; r++) norm_row(out + r * ldo, x + r * ldx, cols, eps, gain);
}

void nb_geglu_rows(float *out, const float *up, size_t rows, size_t inter) {
    for (size_t r = 0; r < rows; r++) {
        const float *x = up + r * 2 * inter, *gate = x + inter;
        float *o = out + r * inter;
#if NB_X86
        if (vectorized()) { geglu_avx2(o, x, gate, inter); continue; }
#endif
        for (size_t i = 0; i < inter; i++) o[i] = x[i] * gelu_scalar(gate[i]);
    }
}

void nb_gelu(float *x, size_t n) {
#if NB_X86
    if (vectorized()) { gelu_avx2(x, n); return; }
#endif
    for (size_t i = 0; i < n; i++) x[i] = gelu_scalar(x[i]);
}

void nb_scaled_mix(float *out, float s, float a, const float *x, float b, const float *y, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = s * (a * x[i] + b * y[i]);
}

void nb_add(float *out, const float *x, const float *y, size_t n) {
    if (y) { for (size_t i = 0; i < n; i++) out[i] = (out[i] + x[i]) + y[i]; }
    else { for (size_t i = 0; i < n; i++) out[i] += x[i]; }
}

void nb_scale(float *out, float s, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] *= s;
}

void nb_head_norm_rope(float *x, size_t heads, size_t d, const float *gain,
                       const float *c, const float *s, float eps) {
    size_t half = d / 2;
    for (size_t h = 0; h < heads; h++) {
        float *v = x + h * d;
        norm_row(v, v, d, eps, gain + h * d);
        for (size_t j = 0; j < half; j++) {
            float x1 = v[j], x2 = v[j + half];
            v[j] = x1 * c[j] - x2 * s[j];
            v[j + half] = x2 * c[j] + x1 * s[j];
        }
    }
}

float nb_softmax_chunk_row(float *row, size_t cols, size_t a, size_t b, float *row_max, float *row_sum) {
    if (a > 0) memset(row, 0, a * sizeof(float));
    if (b < cols) memset(row + b, 0, (cols - b) * sizeof(float));
    if (a >= b) return 1.0f;
    float old = *row_max, sum = 0, mx;
#if NB_X86
    if (vectorized()) {
        mx = softmax_chunk_avx2(row, a, b, old, &sum);
    } else
#endif
    {
        mx = old;
        for (size_t i = a; i < b; i++) if (row[i] > mx) mx = row[i];
        for (size_t i = a; i < b; i++) { float e = exp_scalar(row[i] - mx); row[i] = e; sum += e; }
    }
    float factor = (old == -INFINITY) ? 0.0f : (old == mx ? 1.0f : exp_scalar(old - mx));
    *row_sum = *row_sum * factor + sum;
    *row_max = mx;
    return factor;
}
