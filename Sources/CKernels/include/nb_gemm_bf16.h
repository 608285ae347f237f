// bfloat16 weight GEMMs with weights packed once at load: out[m, n] = x16[m, k] · W16ᵀ with bf16
// inputs (raw bits, uint16_t), exact bf16 products and float32 sums — the arithmetic of OpenBLAS's
// sbgemm. AVX512-BF16 (vdpbf16ps) where the CPU has it, else a portable loop (for tests).
#ifndef NORBERT_NB_GEMM_BF16_H
#define NORBERT_NB_GEMM_BF16_H

#include <stddef.h>
#include <stdint.h>

/// 1 when the CPU (and OS) has AVX512-BF16 and the calling thread's kernel level is AVX-512.
int nb_gemm_bf16_native(void);

/// uint16 values of the packed form of W [n, k]: ceil(n / 32) panels of ceil(k / 2) pairs × 32 × 2.
size_t nb_gemm_bf16_packed_count(size_t n, size_t k);

/// Rounds W [n, k] (float32, row stride ldw ≥ k) to bf16 (nearest even, as nb_to_bf16) and packs
/// it into `packed` [ceil(n/32)][ceil(k/2)][32][2]: panel p, pair q, column j holds
/// (W[32p + j, 2q], W[32p + j, 2q + 1]) — 0 past n or k — the pairs vdpbf16ps multiplies.
void nb_gemm_bf16_pack_nt(uint16_t *packed, const float *w, size_t ldw, size_t n, size_t k);

/// out[m, n] = x16[m, k] · W16ᵀ (beta 0), W packed by nb_gemm_bf16_pack_nt; x16 bf16 bits with row
/// stride lda ≥ k (any k: an odd last element is paired with 0), out row stride ldc ≥ n.
void nb_gemm_bf16_nt_packed(float *out, size_t ldc, const uint16_t *x16, size_t lda, const uint16_t *packed,
                            size_t m, size_t n, size_t k);

#endif
