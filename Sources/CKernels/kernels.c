// The element-wise kernels (include/ckernels.h): their portable C paths, the choice of variant by
// the run-time level (cpu_levels.c) and the public entry points. The AVX2 and AVX-512 variants
// live in kernels_avx2.c and kernels_avx512.c (declared in kernels_variants.h).
#include "ckernels.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

// Mixes and norms round as written: no multiply-add contraction outside explicit FMA intrinsics,
// so every variant rounds the mixes exactly as the portable C does.
#pragma STDC FP_CONTRACT OFF

#include "kernels_variants.h"

#if NB_X86
#include <immintrin.h>
#endif

// The run-time level (cpu_levels.c).
static inline int level(void) { return nb_kernels_level(); }

// ---------------------------------------------------------------- scalar reference paths

static void norm_row_scalar(float *o, const float *x, size_t n, float eps, const float *g) {
    float sum = 0;
    for (size_t i = 0; i < n; i++) sum += x[i];
    float mean = sum / (float)n, ss = 0;
    for (size_t i = 0; i < n; i++) { float d = x[i] - mean; ss += d * d; }
    float inv = 1.0f / sqrtf(ss / (float)n + eps);
    for (size_t i = 0; i < n; i++) o[i] = (x[i] - mean) * inv * (g ? g[i] : 1.0f);
}

static float softmax_scalar(float *row, size_t a, size_t b, float old_max, float *sum_out) {
    float mx = old_max, sum = 0;
    for (size_t i = a; i < b; i++) if (row[i] > mx) mx = row[i];
    for (size_t i = a; i < b; i++) { float e = exp_scalar(row[i] - mx); row[i] = e; sum += e; }
    *sum_out = sum;
    return mx;
}

// ---------------------------------------------------------------- dispatch helpers

static inline void norm_row_at(int l, float *o, const float *x, size_t n, float eps, const float *g) {
#if NB_X86
    if (l >= NB_LEVEL_AVX512) { nbv_norm_row_avx512(o, x, n, eps, g); return; }
    if (l >= NB_LEVEL_AVX2) { nbv_norm_row_avx2(o, x, n, eps, g); return; }
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
    if (l >= NB_LEVEL_AVX512) { nbv_norm_many_avx512(count, os, xs, n, eps, gs); return; }
#endif
    for (size_t r = 0; r < count; r++) norm_row_at(l, os[r], xs[r], n, eps, gs[r]);
}

static inline void rope_at(int l, float *v, size_t half, const float *c, const float *s) {
#if NB_X86
    if (l >= NB_LEVEL_AVX512) { nbv_rope_avx512(v, half, c, s); return; }
    if (l >= NB_LEVEL_AVX2) { nbv_rope_avx2(v, half, c, s); return; }
#endif
    (void)l;
    rope_scalar(v, half, c, s);
}

static void scaled_mix_add_at(int l, float *out, float s, float a, const float *x, float b, const float *y,
                              const float *p, const float *q, size_t n) {
#if NB_X86
    if (l >= NB_LEVEL_AVX512) { nbv_scaled_mix_add_avx512(out, s, a, x, b, y, p, q, n); return; }
    if (l >= NB_LEVEL_AVX2) { nbv_scaled_mix_add_avx2(out, s, a, x, b, y, p, q, n); return; }
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
    if (l >= NB_LEVEL_AVX512) { nbv_exp_avx512(out, x, n); return; }
    if (l >= NB_LEVEL_AVX2) { nbv_exp_avx2(out, x, n); return; }
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
    if (l >= NB_LEVEL_AVX512) { nbv_geglu_avx512(o, x, gate, inter); return; }
    if (l >= NB_LEVEL_AVX2) { nbv_geglu_avx2(o, x, gate, inter); return; }
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
    if (l >= NB_LEVEL_AVX512) { nbv_gelu_avx512(x, n); return; }
    if (l >= NB_LEVEL_AVX2) { nbv_gelu_avx2(x, n); return; }
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
    if (l >= NB_LEVEL_AVX512) { nbv_add_avx512(out, x, y, n); return; }
    if (l >= NB_LEVEL_AVX2) { nbv_add_avx2(out, x, y, n); return; }
#endif
    (void)l;
    if (y) { for (size_t i = 0; i < n; i++) out[i] = (out[i] + x[i]) + y[i]; }
    else { for (size_t i = 0; i < n; i++) out[i] += x[i]; }
}

static void scale_at(int l, float *out, float s, size_t n) {
#if NB_X86
    if (l >= NB_LEVEL_AVX512) { nbv_scale_avx512(out, s, n); return; }
    if (l >= NB_LEVEL_AVX2) { nbv_scale_avx2(out, s, n); return; }
#endif
    (void)l;
    for (size_t i = 0; i < n; i++) out[i] *= s;
}

void nb_scale(float *out, float s, size_t n) { scale_at(level(), out, s, n); }

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
    if (l >= NB_LEVEL_AVX512) return nbv_softmax_chunk_avx512(row, a, b, old, sum);
    if (l >= NB_LEVEL_AVX2) return nbv_softmax_chunk_avx2(row, a, b, old, sum);
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
    scale_at(l, row + a, 1.0f / sum, b - a);
}

// ---------------------------------------------------------------- float32 → bfloat16

static inline uint16_t bf16_scalar(float x) {
    uint32_t b;
    memcpy(&b, &x, 4);
    if ((b & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((b >> 16) | 0x40);   // quiet NaN
    return (uint16_t)((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
}

void nb_to_bf16(uint16_t *out, const float *x, size_t n) {
#if NB_X86
    if (level() >= NB_LEVEL_AVX512) { nbv_to_bf16_avx512(out, x, n); return; }
#endif
    for (size_t i = 0; i < n; i++) out[i] = bf16_scalar(x[i]);
}
