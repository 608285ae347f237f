// Private to CKernels: the vectorised variants of the element-wise kernels (kernels_avx2.c,
// kernels_avx512.c), called by the dispatch in kernels.c once the run-time level allows them
// (cpu_levels.c). Each takes the same arguments as the portable path in kernels.c and is tested
// against it (Tests/TensorsTests/KernelVariantTests).
#ifndef NB_KERNELS_VARIANTS_H
#define NB_KERNELS_VARIANTS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

// Scalar forms shared by the portable path and the variants' tails.
static inline float exp_scalar(float x) {
    if (x < -87.33654f) x = -87.33654f;
    if (x > 88.37626f) x = 88.37626f;
    return expf(x);
}

static inline float gelu_scalar(float x) {
    float u = 0.7978845608028654f * (x + 0.044715f * x * x * x);
    return 0.5f * x * (1.0f + tanhf(u));
}

static inline void rope_scalar(float *v, size_t half, const float *c, const float *s) {
    for (size_t j = 0; j < half; j++) {
        float x1 = v[j], x2 = v[j + half];
        v[j] = x1 * c[j] - x2 * s[j];
        v[j + half] = x2 * c[j] + x1 * s[j];
    }
}

#if defined(__x86_64__)
#define NB_X86 1
#define NB_AVX2 __attribute__((target("avx2,fma")))
#define NB_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")))

// AVX2 + FMA (8 lanes).
void nbv_exp_avx2(float *out, const float *x, size_t n);
void nbv_norm_row_avx2(float *o, const float *x, size_t n, float eps, const float *g);
void nbv_geglu_avx2(float *out, const float *x, const float *gate, size_t n);
void nbv_gelu_avx2(float *x, size_t n);
float nbv_softmax_chunk_avx2(float *row, size_t a, size_t b, float old_max, float *sum_out);
void nbv_scaled_mix_add_avx2(float *out, float s, float a, const float *x, float b, const float *y, const float *p, const float *q, size_t n);
void nbv_add_avx2(float *out, const float *x, const float *y, size_t n);
void nbv_scale_avx2(float *out, float s, size_t n);
void nbv_rope_avx2(float *v, size_t half, const float *c, const float *s);

// AVX-512 F/BW/DQ/VL (16 lanes, masked tails).
void nbv_exp_avx512(float *out, const float *x, size_t n);
void nbv_norm_row_avx512(float *o, const float *x, size_t n, float eps, const float *g);
void nbv_norm_many_avx512(size_t count, float *const *os, const float *const *xs, size_t n, float eps, const float *const *gs);
void nbv_geglu_avx512(float *out, const float *x, const float *gate, size_t n);
void nbv_gelu_avx512(float *x, size_t n);
float nbv_softmax_chunk_avx512(float *row, size_t a, size_t b, float old_max, float *sum_out);
void nbv_scaled_mix_add_avx512(float *out, float s, float a, const float *x, float b, const float *y, const float *p, const float *q, size_t n);
void nbv_add_avx512(float *out, const float *x, const float *y, size_t n);
void nbv_scale_avx512(float *out, float s, size_t n);
void nbv_rope_avx512(float *v, size_t half, const float *c, const float *s);
void nbv_to_bf16_avx512(uint16_t *out, const float *x, size_t n);
#endif

#endif
