// Shared by gemm.c and gemm_bf16.c (private to CKernels): the loop-unrolling helpers and the
// AVX-512 epilogue that writes a tile of up to 12 rows × 32 columns of float32 sums.
#ifndef NB_GEMM_TILE_H
#define NB_GEMM_TILE_H

#include <stddef.h>

#define NB_INLINE static inline __attribute__((always_inline))
/// Unrolls a loop over a tile's rows completely (mr is a constant once the tile is inlined), so
/// each row's accumulators stay in registers: -O2 (SwiftPM's release level for C) does not on
/// its own and the GEMM ran at less than half its -O3 rate.
#define NB_UNROLL_ROWS _Pragma("clang loop unroll(full)")

#if defined(__x86_64__)
#include <immintrin.h>

/// The masks of the first nr ≤ 32 columns of a 32-column tile: *m0 over columns 0..<16, *m1 over 16..<32.
NB_INLINE void nb_tile32_masks(size_t nr, __mmask16 *m0, __mmask16 *m1) {
    *m0 = nr >= 16 ? 0xffff : (__mmask16)((1u << nr) - 1);
    *m1 = nr >= 32 ? 0xffff : nr <= 16 ? 0 : (__mmask16)((1u << (nr - 16)) - 1);
}

/// out[mr, nr] = (or +=, accumulate) the sums lo[i] (columns 0..<16) and hi[i] (16..<32) of each
/// row i < mr; nr ≤ 32 columns kept (masked loads and stores), row stride ldc.
__attribute__((target("avx512f"))) NB_INLINE void nb_store_tile32_avx512(const size_t mr, __m512 *lo, __m512 *hi,
                                                                        float *out, size_t ldc, size_t nr, int accumulate) {
    __mmask16 m0, m1;
    nb_tile32_masks(nr, &m0, &m1);
    NB_UNROLL_ROWS
    for (size_t i = 0; i < mr; i++) {
        float *row = out + i * ldc;
        if (accumulate) {
            lo[i] = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, row), lo[i]);
            hi[i] = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, row + 16), hi[i]);
        }
        _mm512_mask_storeu_ps(row, m0, lo[i]);
        _mm512_mask_storeu_ps(row + 16, m1, hi[i]);
    }
}
#endif

#endif
