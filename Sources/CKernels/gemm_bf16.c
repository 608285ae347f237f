// bfloat16 weight GEMMs with pre-packed weights (see include/nb_gemm_bf16.h):
// out[m, n] = x16[m, k] · W16ᵀ, W rounded to bf16 once and packed into panels of 32 columns of
// k pairs, [panel][k/2][32][2]. Same blocking as gemm.c (K blocks, panel chunks for L2, 12-row
// tiles whose 12 × 32 sums stay in registers), with vdpbf16ps: each step multiplies one pair of
// x16 (broadcast) by the pairs of 32 columns (two zmm) and adds both exact products to the float32
// sums (the odd element's product first, then the even one's, as the instruction defines).
#include "ckernels.h"
#include "nb_gemm_bf16.h"
#include "gemm_tile.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define NB_BF16_X86 1
#define NB_GEMM_BF16 __attribute__((target("avx512bf16,avx512f,avx512bw")))
#endif


enum { PANEL16 = 32, MR16 = 12 };
/// Largest K block in pairs (2,048 values: base's 1,664 in one block; see NB_GEMM_KC in gemm.c).
#define NB_GEMM_BF16_KP 1024
#define NB_GEMM_BF16_CHUNK_BYTES (512 * 1024)

int nb_gemm_bf16_native(void) {
    return (nb_cpu_features() & NB_CPU_AVX512BF16) && nb_kernels_level() >= NB_LEVEL_AVX512;
}

size_t nb_gemm_bf16_packed_count(size_t n, size_t k) {
    return (n + PANEL16 - 1) / PANEL16 * PANEL16 * ((k + 1) / 2 * 2);
}

/// float32 → bf16 bits, nearest even, NaN kept quiet: the rounding of nb_to_bf16's portable path.
static inline uint16_t round_bf16(float x) {
    uint32_t b;
    memcpy(&b, &x, 4);
    if ((b & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((b >> 16) | 0x40);
    return (uint16_t)((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
}

void nb_gemm_bf16_pack_nt(uint16_t *packed, const float *w, size_t ldw, size_t n, size_t k) {
    size_t panels = (n + PANEL16 - 1) / PANEL16, pairs = (k + 1) / 2;
    for (size_t p = 0; p < panels; p++) {
        uint16_t *panel = packed + p * PANEL16 * pairs * 2;
        for (size_t q = 0; q < pairs; q++) {
            for (size_t j = 0; j < PANEL16; j++) {
                size_t col = p * PANEL16 + j;
                for (size_t e = 0; e < 2; e++) {
                    size_t kk = 2 * q + e;
                    panel[(q * PANEL16 + j) * 2 + e] = col < n && kk < k ? round_bf16(w[col * ldw + kk]) : 0;
                }
            }
        }
    }
}

static inline float bf16_value(uint16_t bits) {
    uint32_t u = (uint32_t)bits << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/// The pair (x[2q], x[2q + 1]) of a row as one 32-bit lane (even element in the low half); the
/// odd element is 0 past k.
static inline uint32_t pair_at(const uint16_t *row, size_t q, size_t k) {
    uint32_t lo = row[2 * q], hi = 2 * q + 1 < k ? row[2 * q + 1] : 0;
    return lo | hi << 16;
}

/// One tile: out[mr, nr] (=|+=) x16[mr, pairs q0..<q1] · panel pairs q0..<q1; k bounds the last pair.
typedef void (*tile16_fn)(size_t mr, size_t q0, size_t q1, size_t k, const uint16_t *x, size_t lda,
                          const uint16_t *panel, float *out, size_t ldc, size_t nr, int accumulate);

static void tile_bf16_portable(size_t mr, size_t q0, size_t q1, size_t k, const uint16_t *x, size_t lda,
                               const uint16_t *panel, float *out, size_t ldc, size_t nr, int accumulate) {
    for (size_t i = 0; i < mr; i++) {
        float acc[PANEL16] = {0};
        for (size_t q = q0; q < q1; q++) {
            uint32_t a = pair_at(x + i * lda, q, k);
            float a0 = bf16_value((uint16_t)a), a1 = bf16_value((uint16_t)(a >> 16));
            const uint16_t *b = panel + q * PANEL16 * 2;
            for (size_t j = 0; j < PANEL16; j++) {
                acc[j] += a1 * bf16_value(b[2 * j + 1]);   // exact products; odd first, as vdpbf16ps
                acc[j] += a0 * bf16_value(b[2 * j]);
            }
        }
        float *row = out + i * ldc;
        for (size_t j = 0; j < nr; j++) row[j] = accumulate ? row[j] + acc[j] : acc[j];
    }
}

#if NB_BF16_X86
NB_GEMM_BF16 NB_INLINE void tile32_bf16(const size_t mr, size_t q0, size_t q1, size_t k, const uint16_t *x, size_t lda,
                                        const uint16_t *panel, float *out, size_t ldc, size_t nr, int accumulate) {
    __m512 lo[MR16], hi[MR16];
    NB_UNROLL_ROWS
    for (size_t i = 0; i < mr; i++) { lo[i] = _mm512_setzero_ps(); hi[i] = _mm512_setzero_ps(); }
    size_t full = q1 * 2 <= k ? q1 : q1 - 1;   // pairs with both elements inside k
    for (size_t q = q0; q < full; q++) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(panel + q * PANEL16 * 2);
        __m512bh b1 = (__m512bh)_mm512_loadu_si512(panel + q * PANEL16 * 2 + 32);
        NB_UNROLL_ROWS
        for (size_t i = 0; i < mr; i++) {
            uint32_t a;
            memcpy(&a, x + i * lda + 2 * q, 4);
            __m512bh av = (__m512bh)_mm512_set1_epi32((int)a);
            lo[i] = _mm512_dpbf16_ps(lo[i], av, b0);
            hi[i] = _mm512_dpbf16_ps(hi[i], av, b1);
        }
    }
    if (full < q1) {   // odd k: the last element pairs with 0
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(panel + full * PANEL16 * 2);
        __m512bh b1 = (__m512bh)_mm512_loadu_si512(panel + full * PANEL16 * 2 + 32);
        NB_UNROLL_ROWS
        for (size_t i = 0; i < mr; i++) {
            __m512bh av = (__m512bh)_mm512_set1_epi32((int)pair_at(x + i * lda, full, k));
            lo[i] = _mm512_dpbf16_ps(lo[i], av, b0);
            hi[i] = _mm512_dpbf16_ps(hi[i], av, b1);
        }
    }
    nb_store_tile32_avx512(mr, lo, hi, out, ldc, nr, accumulate);
}

NB_GEMM_BF16 static void tile_bf16_avx512(size_t mr, size_t q0, size_t q1, size_t k, const uint16_t *x, size_t lda,
                                          const uint16_t *panel, float *out, size_t ldc, size_t nr, int accumulate) {
#define T(r) case r: tile32_bf16(r, q0, q1, k, x, lda, panel, out, ldc, nr, accumulate); break
    switch (mr) {
    T(12); T(11); T(10); T(9); T(8); T(7); T(6); T(5); T(4); T(3); T(2); T(1);
    default: break;
    }
#undef T
}
#endif

void nb_gemm_bf16_nt_packed(float *out, size_t ldc, const uint16_t *x, size_t lda, const uint16_t *packed,
                            size_t m, size_t n, size_t k) {
    if (m == 0 || n == 0) return;
    if (k == 0) {
        for (size_t i = 0; i < m; i++) memset(out + i * ldc, 0, n * sizeof(float));
        return;
    }
    tile16_fn tile = tile_bf16_portable;
    size_t mr_max = 4;
#if NB_BF16_X86
    if (nb_gemm_bf16_native()) { tile = tile_bf16_avx512; mr_max = MR16; }
#endif
    size_t pairs = (k + 1) / 2, panels = (n + PANEL16 - 1) / PANEL16;
    size_t kblocks = (pairs + NB_GEMM_BF16_KP - 1) / NB_GEMM_BF16_KP;
    for (size_t kb = 0; kb < kblocks; kb++) {
        size_t q0 = pairs * kb / kblocks, q1 = pairs * (kb + 1) / kblocks;
        size_t chunk = NB_GEMM_BF16_CHUNK_BYTES / ((q1 - q0) * PANEL16 * 4);
        if (chunk < 1) chunk = 1;
        for (size_t p0 = 0; p0 < panels; p0 += chunk) {
            size_t p1 = p0 + chunk < panels ? p0 + chunk : panels;
            for (size_t i0 = 0; i0 < m; i0 += mr_max) {
                size_t mr = m - i0 < mr_max ? m - i0 : mr_max;
                for (size_t p = p0; p < p1; p++) {
                    size_t nr = n - p * PANEL16 < PANEL16 ? n - p * PANEL16 : PANEL16;
                    tile(mr, q0, q1, k, x + i0 * lda, lda, packed + p * PANEL16 * pairs * 2,
                         out + i0 * ldc + p * PANEL16, ldc, nr, kb > 0);
                }
            }
        }
    }
}
