// Element-wise float32 kernels of the Tensors target, vectorised with AVX2/FMA where the CPU has
// them (checked once at run time) and portable C elsewhere. Output first, then inputs.
#ifndef NORBERT_CKERNELS_H
#define NORBERT_CKERNELS_H

#include <stddef.h>

/// 1 when the AVX2+FMA paths are in use.
int nb_kernels_vectorized(void);

/// out[i] = exp(x[i]), x clamped to [-87.34, 88.38] (e^-87.3 stands in for 0; the top keeps 2^n finite).
void nb_exp(float *out, const float *x, size_t n);

/// Non-affine LayerNorm of `rows` rows of `cols` values, optionally times gain[cols]; in place allowed.
void nb_layer_norm(float *out, size_t ldo, const float *x, size_t ldx, size_t rows, size_t cols,
                   float eps, const float *gain);

/// out[r, i] = up[r, i] * gelu_tanh(up[r, inter + i]) for rows of `up` [rows, 2·inter].
void nb_geglu_rows(float *out, const float *up, size_t rows, size_t inter);

/// x[i] = gelu_tanh(x[i]).
void nb_gelu(float *x, size_t n);

/// out[i] = s * (a * x[i] + b * y[i]).
void nb_scaled_mix(float *out, float s, float a, const float *x, float b, const float *y, size_t n);

/// out[i] = out[i] + x[i] (+ y[i] when y is not NULL), summed left to right.
void nb_add(float *out, const float *x, const float *y, size_t n);

/// out[i] *= s.
void nb_scale(float *out, float s, size_t n);

/// Per-head LayerNorm of `heads` vectors of d values at x (stride d) times gain[heads·d], then
/// rotary embedding with cos/sin tables [d/2] of this position (rotate-half pairs (j, j+d/2)).
void nb_head_norm_rope(float *x, size_t heads, size_t d, const float *gain,
                       const float *cos_table, const float *sin_table, float eps);

/// One score row of an online softmax over a key chunk: entries outside [a, b) are set to 0;
/// inside, they become exp(s - m') where m' = max(*row_max, max(s[a..b))). *row_sum is rescaled
/// to m' and increased by the new terms; returns the factor exp(old max - m') by which earlier
/// accumulated outputs must be multiplied (1 when unchanged, 0 when there were none).
float nb_softmax_chunk_row(float *row, size_t cols, size_t a, size_t b, float *row_max, float *row_sum);

#endif
