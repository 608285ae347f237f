// Element-wise float32 kernels of the Tensors target in three variants chosen at run time:
// AVX-512 (F/BW/DQ/VL), AVX2+FMA, and portable C. Output first, then inputs.
#ifndef NORBERT_CKERNELS_H
#define NORBERT_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

/// Kernel variants, narrowest first.
enum { NB_LEVEL_PORTABLE = 0, NB_LEVEL_AVX2 = 1, NB_LEVEL_AVX512 = 2 };

/// The widest variant this CPU (and OS) supports.
int nb_kernels_detected_level(void);
/// The variant in use on the calling thread: the thread's forced level if set, else the process
/// level (the detected one, capped by NORBERT_KERNELS=portable|avx2|avx512 when set).
int nb_kernels_level(void);
/// Forces a variant on the calling thread only (capped at the detected level); -1 clears it.
/// Used by tests to run every variant on one CPU side by side.
void nb_kernels_force_level_this_thread(int level);

/// CPU feature bits from cpuid (with the OS's register-state support checked).
enum {
    NB_CPU_AVX2 = 1 << 0, NB_CPU_FMA = 1 << 1, NB_CPU_AVX512F = 1 << 2, NB_CPU_AVX512BW = 1 << 3,
    NB_CPU_AVX512DQ = 1 << 4, NB_CPU_AVX512VL = 1 << 5, NB_CPU_AVX512BF16 = 1 << 6,
    NB_CPU_AVX512VNNI = 1 << 7, NB_CPU_AMX = 1 << 8
};
uint32_t nb_cpu_features(void);

/// 1 when the AVX2+FMA paths (or wider) are in use.
int nb_kernels_vectorized(void);

/// out[i] = exp(x[i]), x clamped to [-87.34, 88.38] (e^-87.3 stands in for 0; the top keeps 2^n finite).
void nb_exp(float *out, const float *x, size_t n);

/// Non-affine LayerNorm of `rows` rows of `cols` values, optionally times gain[cols]; in place allowed.
/// out [rows, ldo ≥ cols], x [rows, ldx ≥ cols].
void nb_layer_norm(float *out, size_t ldo, const float *x, size_t ldx, size_t rows, size_t cols,
                   float eps, const float *gain);

/// Fused lambda mix + LayerNorm: out[r, :] = LayerNorm(s · (a · x[r, :] + b · y[r, :]) + p[r, :])
/// for rows of `cols` values (x, y, p, out all [rows, cols], contiguous; p may be NULL); the mix
/// rounds exactly as nb_scaled_mix_add. out may alias x or y.
void nb_mix_layer_norm(float *out, float s, float a, const float *x, float b, const float *y,
                       const float *p, size_t rows, size_t cols, float eps);

/// GeGLU then LayerNorm of each row: out[r, :] = LayerNorm(up[r, :inter] * gelu(up[r, inter:]))
/// for up [rows, 2·inter], out [rows, inter].
void nb_geglu_norm_rows(float *out, const float *up, size_t rows, size_t inter, float eps);

/// out[r, i] = up[r, i] * gelu_tanh(up[r, inter + i]) for rows of `up` [rows, 2·inter].
void nb_geglu_rows(float *out, const float *up, size_t rows, size_t inter);

/// x[i] = gelu_tanh(x[i]).
void nb_gelu(float *x, size_t n);

/// out[i] = s * (a * x[i] + b * y[i]).
void nb_scaled_mix(float *out, float s, float a, const float *x, float b, const float *y, size_t n);

/// out[i] = (s * (a * x[i] + b * y[i]) + p[i]) (+ q[i] when q is not NULL), in that order.
/// out may alias x or y.
void nb_scaled_mix_add(float *out, float s, float a, const float *x, float b, const float *y,
                       const float *p, const float *q, size_t n);

/// out[i] = out[i] + x[i] (+ y[i] when y is not NULL), summed left to right.
void nb_add(float *out, const float *x, const float *y, size_t n);

/// out[i] *= s.
void nb_scale(float *out, float s, size_t n);

/// Per-head LayerNorm of `heads` vectors of d values at x (stride d) times gain[heads·d], then
/// rotary embedding with cos/sin tables [d/2] of this position (rotate-half pairs (j, j+d/2)).
void nb_head_norm_rope(float *x, size_t heads, size_t d, const float *gain,
                       const float *cos_table, const float *sin_table, float eps);

/// nb_head_norm_rope over `rows` consecutive token rows of qk [rows, ld ≥ 2·heads·d]: the q half
/// (gain qgain) and the k half (kgain) of each row; row t uses cos/sin row t of tables [rows, d/2].
void nb_qk_norm_rope_rows(float *qk, size_t ld, size_t rows, size_t heads, size_t d,
                          const float *qgain, const float *kgain,
                          const float *cos_rows, const float *sin_rows, float eps);

/// One score row of an online softmax over a key chunk: entries outside [a, b) are set to 0;
/// inside, they become exp(s - m') where m' = max(*row_max, max(s[a..b))). *row_sum is rescaled
/// to m' and increased by the new terms; returns the factor exp(old max - m') by which earlier
/// accumulated outputs must be multiplied (1 when unchanged, 0 when there were none).
float nb_softmax_chunk_row(float *row, size_t cols, size_t a, size_t b, float *row_max, float *row_sum);

/// Whole softmax of row[a..b) of a row of `cols` scores (outside set to 0), normalised so the
/// visible entries sum to 1 (all 0 when a ≥ b).
void nb_softmax_row(float *row, size_t cols, size_t a, size_t b);

/// out[i] = x[i] rounded to bfloat16 (round to nearest even; NaN stays a quiet NaN), as raw bits.
void nb_to_bf16(uint16_t *out, const float *x, size_t n);

#endif
