// The weight GEMMs of the encoder with weights packed once at load: out[m, n] = x[m, k] · Wᵀ for a
// PyTorch Linear weight W [n, k]. Three variants chosen at run time like the element-wise kernels
// (nb_kernels_level(): AVX-512 F, AVX2+FMA, portable C); single-threaded (one lane per core).
#ifndef NORBERT_NB_GEMM_H
#define NORBERT_NB_GEMM_H

#include <stddef.h>
#include <stdint.h>

/// Columns (output features) per packed panel.
#define NB_GEMM_PANEL 32

/// Floats of the packed form of W [n, k]: ceil(n / 32) panels of k × 32 (the last zero-padded).
size_t nb_gemm_packed_count(size_t n, size_t k);

/// Packs W [n, k] (row stride ldw ≥ k) into `packed` [ceil(n/32)][k][32]: panel p, row kk holds
/// W[32p + j, kk] for j = 0..<32 (0 past n), the order the micro-kernels stream it in.
void nb_gemm_pack_nt(float *packed, const float *w, size_t ldw, size_t n, size_t k);

/// Packs B [k, n] (row stride ldb ≥ n; the x · B layout, e.g. attention's values) into the same
/// panels: panel p, row kk holds B[kk, 32p + j] (0 past n). Then nb_gemm_nt_packed gives x · B.
void nb_gemm_pack_nn(float *packed, const float *b, size_t ldb, size_t n, size_t k);

/// out[m, n] = alpha · x[m, k] · Wᵀ (accumulate = 0) or out += alpha · x · Wᵀ (accumulate = 1), W
/// packed by nb_gemm_pack_nt (or B by nb_gemm_pack_nn); x row stride lda ≥ k, out row stride
/// ldc ≥ n. Every output element is written once per K block of 1,024 (no separate zeroing pass);
/// m = 0 or n = 0 does nothing; k = 0 gives zeros (or leaves out unchanged when accumulating).
void nb_gemm_nt_packed(float *out, size_t ldc, const float *x, size_t lda, const float *packed,
                       size_t m, size_t n, size_t k, float alpha, int accumulate);

/// out[m, n] = alpha · x[m, k] · B (or out += …, accumulate = 1) for B [k, n] read in place (row
/// stride ldb ≥ n; nothing past column n is read), without packing: where the kernel level has
/// such a kernel (AVX-512), returns 1; else does nothing and returns 0 (pack B with
/// nb_gemm_pack_nn and call nb_gemm_nt_packed instead). For small k, as attention's P · V over a
/// short sequence's values. For k ≤ 1,024 (one K block) the result equals the packed form's exactly.
int nb_gemm_nn_direct(float *out, size_t ldc, const float *x, size_t lda, const float *b, size_t ldb,
                      size_t m, size_t n, size_t k, float alpha, int accumulate);

#endif
