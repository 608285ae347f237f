// The encoder's weight GEMMs with pre-packed weights (see include/nb_gemm.h):
// out[m, n] = x[m, k] · Wᵀ, W [n, k] packed once into panels of 32 columns, [panel][k][32].
//
// Blocking (one thread): K in blocks of at most NB_GEMM_KC (later blocks accumulate into out);
// the panels of a K block in chunks whose packed bytes fit half of L2; for each chunk, row blocks
// of MR rows of x, and for each row block every panel of the chunk through the micro-kernel, which
// keeps the MR × 32 outputs in registers over the whole K block and writes them once. x is read in
// place (row stride lda): an MR × kc block of it is reused from L1 by every panel of the chunk.
#include "ckernels.h"
#include "nb_gemm.h"
#include "gemm_tile.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define NB_GEMM_X86 1
#define NB_GEMM_AVX2 __attribute__((target("avx2,fma")))
#define NB_GEMM_AVX512 __attribute__((target("avx512f,avx2,fma")))
#endif


/// Largest K block: an MR × kc block of x (up to 12 × 1,024 × 4 = 48 KB) is reused from L1/L2 by
/// the panels of a chunk. Every further K block re-reads and re-writes all of out, which at m in
/// the thousands is a trip to memory: 1,024 keeps base's K = 640 in one block (512 measured ~10%
/// slower there) and splits 1,664 in two.
#define NB_GEMM_KC 1024
/// Bytes of packed panels per chunk (half of a 1 MB L2): reused by every row block of x.
#define NB_GEMM_CHUNK_BYTES (512 * 1024)

enum { PANEL = NB_GEMM_PANEL };

size_t nb_gemm_packed_count(size_t n, size_t k) { return (n + PANEL - 1) / PANEL * PANEL * k; }

static void pack_nt_portable(float *packed, const float *w, size_t ldw, size_t n, size_t k) {
    size_t panels = (n + PANEL - 1) / PANEL;
    for (size_t p = 0; p < panels; p++) {
        float *panel = packed + p * PANEL * k;
        for (size_t kk = 0; kk < k; kk++) {
            for (size_t j = 0; j < PANEL; j++) {
                size_t col = p * PANEL + j;
                panel[kk * PANEL + j] = col < n ? w[col * ldw + kk] : 0.0f;
            }
        }
    }
}

#if NB_GEMM_X86
/// The same, 16 × 16 blocks at a time: 16 rows of W (16 of its k) loaded, transposed in registers
/// (32-bit, then 64-bit interleaves, then 128-bit lane shuffles), and stored as 16 half-rows of the
/// panel. Rows past n load as zeros; k past the end is masked on load and not stored. (Attention
/// packs every block's keys with it: the scalar form's strided reads were ~3% of a short pass.)
NB_GEMM_AVX512 static void pack_nt_avx512(float *packed, const float *w, size_t ldw, size_t n, size_t k) {
    size_t panels = (n + PANEL - 1) / PANEL;
    for (size_t p = 0; p < panels; p++) {
        float *panel = packed + p * PANEL * k;
        for (size_t j0 = 0; j0 < PANEL; j0 += 16) {
            for (size_t k0 = 0; k0 < k; k0 += 16) {
                size_t kn = k - k0 < 16 ? k - k0 : 16;
                __mmask16 km = (__mmask16)((1u << kn) - 1u);
                __m512 r[16], t[16];
                for (int i = 0; i < 16; i++) {
                    size_t col = p * PANEL + j0 + (size_t)i;
                    r[i] = col < n ? _mm512_maskz_loadu_ps(km, w + col * ldw + k0) : _mm512_setzero_ps();
                }
                for (int i = 0; i < 16; i += 2) {
                    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
                    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
                }
                for (int g = 0; g < 16; g += 4) {
                    __m512d a = _mm512_castps_pd(t[g]), b = _mm512_castps_pd(t[g + 1]);
                    __m512d c = _mm512_castps_pd(t[g + 2]), d = _mm512_castps_pd(t[g + 3]);
                    r[g] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
                    r[g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
                    r[g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
                    r[g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
                }
                // Now r[g + j], 128-bit lane L: column 4L + j of rows g..g+3 (g = 0, 4, 8, 12).
                for (int j = 0; j < 4; j++) {
                    __m512 v0 = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x44), v1 = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xEE);
                    __m512 v2 = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x44);
                    __m512 v3 = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xEE);
                    __m512 cols[4] = {
                        _mm512_shuffle_f32x4(v0, v2, 0x88), _mm512_shuffle_f32x4(v0, v2, 0xDD),
                        _mm512_shuffle_f32x4(v1, v3, 0x88), _mm512_shuffle_f32x4(v1, v3, 0xDD),
                    };
                    for (int lane = 0; lane < 4; lane++) {
                        size_t c = (size_t)(4 * lane + j);
                        if (c < kn) _mm512_storeu_ps(panel + (k0 + c) * PANEL + j0, cols[lane]);
                    }
                }
            }
        }
    }
}
#endif

void nb_gemm_pack_nt(float *packed, const float *w, size_t ldw, size_t n, size_t k) {
#if NB_GEMM_X86
    if (nb_kernels_level() >= NB_LEVEL_AVX512) { pack_nt_avx512(packed, w, ldw, n, k); return; }
#endif
    pack_nt_portable(packed, w, ldw, n, k);
}

void nb_gemm_pack_nn(float *packed, const float *b, size_t ldb, size_t n, size_t k) {
    size_t panels = (n + PANEL - 1) / PANEL;
    for (size_t p = 0; p < panels; p++) {
        float *panel = packed + p * PANEL * k;
        size_t cols = n - p * PANEL < PANEL ? n - p * PANEL : PANEL;
        for (size_t kk = 0; kk < k; kk++) {
            memcpy(panel + kk * PANEL, b + kk * ldb + p * PANEL, cols * sizeof(float));
            if (cols < PANEL) memset(panel + kk * PANEL + cols, 0, (PANEL - cols) * sizeof(float));
        }
    }
}

/// One tile: out[mr, nr] (=|+=) alpha · x[mr, kc] · panel[kc, 32] restricted to its first nr columns;
/// panel is the K block of one packed panel (row stride 32); x has row stride lda.
typedef void (*tile_fn)(size_t mr, size_t kc, const float *x, size_t lda, const float *panel,
                        float *out, size_t ldc, size_t nr, float alpha, int accumulate);

// ---------------------------------------------------------------- portable C: 4 × 32 tiles

static void tile_portable(size_t mr, size_t kc, const float *x, size_t lda, const float *panel,
                          float *out, size_t ldc, size_t nr, float alpha, int accumulate) {
    for (size_t i0 = 0; i0 < mr; i0 += 4) {
        size_t rows = mr - i0 < 4 ? mr - i0 : 4;
        float acc[4][PANEL];
        memset(acc, 0, sizeof acc);
        for (size_t p = 0; p < kc; p++) {
            const float *b = panel + p * PANEL;
            for (size_t i = 0; i < rows; i++) {
                float av = x[(i0 + i) * lda + p];
                for (size_t j = 0; j < PANEL; j++) acc[i][j] += av * b[j];
            }
        }
        for (size_t i = 0; i < rows; i++) {
            float *row = out + (i0 + i) * ldc;
            for (size_t j = 0; j < nr; j++) row[j] = accumulate ? row[j] + alpha * acc[i][j] : alpha * acc[i][j];
        }
    }
}

#if NB_GEMM_X86
// ---------------------------------------------------------------- AVX2+FMA: 6 × 16 tiles (12 ymm)

/// Rows mr ≤ 6 of x against 16 columns of a panel (half = 0 or 1), nr ≤ 16 of them kept.
NB_GEMM_AVX2 NB_INLINE void tile16_avx2(const size_t mr, size_t kc, const float *x, size_t lda, const float *half,
                                        float *out, size_t ldc, size_t nr, float alpha, int accumulate) {
    __m256 lo[6], hi[6];
    NB_UNROLL_ROWS
    for (size_t i = 0; i < mr; i++) { lo[i] = _mm256_setzero_ps(); hi[i] = _mm256_setzero_ps(); }
    for (size_t p = 0; p < kc; p++) {
        __m256 b0 = _mm256_loadu_ps(half + p * PANEL), b1 = _mm256_loadu_ps(half + p * PANEL + 8);
        NB_UNROLL_ROWS
        for (size_t i = 0; i < mr; i++) {
            __m256 av = _mm256_broadcast_ss(x + i * lda + p);
            lo[i] = _mm256_fmadd_ps(av, b0, lo[i]);
            hi[i] = _mm256_fmadd_ps(av, b1, hi[i]);
        }
    }
    if (alpha != 1.0f) {
        __m256 a = _mm256_set1_ps(alpha);
        NB_UNROLL_ROWS
        for (size_t i = 0; i < mr; i++) { lo[i] = _mm256_mul_ps(a, lo[i]); hi[i] = _mm256_mul_ps(a, hi[i]); }
    }
    NB_UNROLL_ROWS
    for (size_t i = 0; i < mr; i++) {
        float *row = out + i * ldc;
        if (nr == 16) {
            if (accumulate) {
                lo[i] = _mm256_add_ps(_mm256_loadu_ps(row), lo[i]);
                hi[i] = _mm256_add_ps(_mm256_loadu_ps(row + 8), hi[i]);
            }
            _mm256_storeu_ps(row, lo[i]);
            _mm256_storeu_ps(row + 8, hi[i]);
        } else {
            float t[16];
            _mm256_storeu_ps(t, lo[i]);
            _mm256_storeu_ps(t + 8, hi[i]);
            for (size_t j = 0; j < nr; j++) row[j] = accumulate ? row[j] + t[j] : t[j];
        }
    }
}

NB_GEMM_AVX2 static void tile_avx2(size_t mr, size_t kc, const float *x, size_t lda, const float *panel,
                                   float *out, size_t ldc, size_t nr, float alpha, int accumulate) {
    for (size_t h = 0; h < 2 && h * 16 < nr; h++) {
        size_t cols = nr - h * 16 < 16 ? nr - h * 16 : 16;
        for (size_t i0 = 0; i0 < mr; i0 += 6) {
            const float *xi = x + i0 * lda;
            float *oi = out + i0 * ldc + h * 16;
            switch (mr - i0 < 6 ? mr - i0 : 6) {
            case 6: tile16_avx2(6, kc, xi, lda, panel + h * 16, oi, ldc, cols, alpha, accumulate); break;
            case 5: tile16_avx2(5, kc, xi, lda, panel + h * 16, oi, ldc, cols, alpha, accumulate); break;
            case 4: tile16_avx2(4, kc, xi, lda, panel + h * 16, oi, ldc, cols, alpha, accumulate); break;
            case 3: tile16_avx2(3, kc, xi, lda, panel + h * 16, oi, ldc, cols, alpha, accumulate); break;
            case 2: tile16_avx2(2, kc, xi, lda, panel + h * 16, oi, ldc, cols, alpha, accumulate); break;
            default: tile16_avx2(1, kc, xi, lda, panel + h * 16, oi, ldc, cols, alpha, accumulate); break;
            }
        }
    }
}

// ---------------------------------------------------------------- AVX-512: 12 × 32 tiles (24 zmm)

/// Rows per AVX-512 tile: 12 × 2 accumulators. (14 fits the 32 registers too but measured ~2%
/// slower here; 8 measured the same as 12 within the noise.)
#define MR512 12

/// Rows mr ≤ 12 of x against the 32 columns of a panel, nr ≤ 32 of them kept (masked stores). The
/// panel's rows are ldp floats apart, of which the columns in the masks bm0 (0..<16) and bm1
/// (16..<32) are read: a packed panel (ldp = 32, all read: the masks fold away), or 32 columns of a
/// B [k, n] read in place (ldp = its row stride; columns past n masked).
NB_GEMM_AVX512 NB_INLINE void tile32_avx512(const size_t mr, size_t kc, const float *x, size_t lda, const float *panel,
                                            const size_t ldp, const __mmask16 bm0, const __mmask16 bm1,
                                            float *out, size_t ldc, size_t nr, float alpha, int accumulate) {
    __m512 lo[MR512], hi[MR512];
    NB_UNROLL_ROWS
    for (size_t i = 0; i < mr; i++) { lo[i] = _mm512_setzero_ps(); hi[i] = _mm512_setzero_ps(); }
    for (size_t p = 0; p < kc; p++) {
        __m512 b0 = _mm512_maskz_loadu_ps(bm0, panel + p * ldp), b1 = _mm512_maskz_loadu_ps(bm1, panel + p * ldp + 16);
        NB_UNROLL_ROWS
        for (size_t i = 0; i < mr; i++) {
            __m512 av = _mm512_set1_ps(x[i * lda + p]);
            lo[i] = _mm512_fmadd_ps(av, b0, lo[i]);
            hi[i] = _mm512_fmadd_ps(av, b1, hi[i]);
        }
    }
    if (alpha != 1.0f) {
        __m512 a = _mm512_set1_ps(alpha);
        NB_UNROLL_ROWS
        for (size_t i = 0; i < mr; i++) { lo[i] = _mm512_mul_ps(a, lo[i]); hi[i] = _mm512_mul_ps(a, hi[i]); }
    }
    nb_store_tile32_avx512(mr, lo, hi, out, ldc, nr, accumulate);
}

NB_GEMM_AVX512 static void tile_avx512(size_t mr, size_t kc, const float *x, size_t lda, const float *panel,
                                       float *out, size_t ldc, size_t nr, float alpha, int accumulate) {
#define T(r) case r: tile32_avx512(r, kc, x, lda, panel, PANEL, 0xffff, 0xffff, out, ldc, nr, alpha, accumulate); break
    switch (mr) {
    T(12); T(11); T(10); T(9); T(8); T(7); T(6); T(5); T(4); T(3); T(2); T(1);
    default: break;
    }
#undef T
}

/// The same tile over 32 columns of B [k, n] read in place (row stride ldb), nr ≤ 32 of them.
NB_GEMM_AVX512 static void tile_direct_avx512(size_t mr, size_t kc, const float *x, size_t lda, const float *b, size_t ldb,
                                              float *out, size_t ldc, size_t nr, float alpha, int accumulate) {
    __mmask16 m0, m1;
    nb_tile32_masks(nr, &m0, &m1);
#define T(r) case r: tile32_avx512(r, kc, x, lda, b, ldb, m0, m1, out, ldc, nr, alpha, accumulate); break
    switch (mr) {
    T(12); T(11); T(10); T(9); T(8); T(7); T(6); T(5); T(4); T(3); T(2); T(1);
    default: break;
    }
#undef T
}
#endif

// ---------------------------------------------------------------- driver

static void drive(tile_fn tile, size_t mr_max, float *out, size_t ldc, const float *x, size_t lda,
                  const float *packed, size_t m, size_t n, size_t k, float alpha, int accumulate) {
    size_t panels = (n + PANEL - 1) / PANEL;
    size_t kblocks = (k + NB_GEMM_KC - 1) / NB_GEMM_KC;
    for (size_t kb = 0; kb < kblocks; kb++) {
        // Even K blocks (e.g. 1,664 → 2 × 832), so no block is a sliver.
        size_t k0 = k * kb / kblocks, kc = k * (kb + 1) / kblocks - k0;
        int acc = accumulate || kb > 0;
        size_t chunk = NB_GEMM_CHUNK_BYTES / (kc * PANEL * sizeof(float));
        if (chunk < 1) chunk = 1;
        for (size_t p0 = 0; p0 < panels; p0 += chunk) {
            size_t p1 = p0 + chunk < panels ? p0 + chunk : panels;
            for (size_t i0 = 0; i0 < m; i0 += mr_max) {
                size_t mr = m - i0 < mr_max ? m - i0 : mr_max;
                for (size_t p = p0; p < p1; p++) {
                    size_t nr = n - p * PANEL < PANEL ? n - p * PANEL : PANEL;
                    tile(mr, kc, x + i0 * lda + k0, lda, packed + p * PANEL * k + k0 * PANEL,
                         out + i0 * ldc + p * PANEL, ldc, nr, alpha, acc);
                }
            }
        }
    }
}

void nb_gemm_nt_packed(float *out, size_t ldc, const float *x, size_t lda, const float *packed,
                       size_t m, size_t n, size_t k, float alpha, int accumulate) {
    if (m == 0 || n == 0) return;
    if (k == 0) {
        if (!accumulate) for (size_t i = 0; i < m; i++) memset(out + i * ldc, 0, n * sizeof(float));
        return;
    }
    int l = nb_kernels_level();
#if NB_GEMM_X86
    if (l >= NB_LEVEL_AVX512) { drive(tile_avx512, MR512, out, ldc, x, lda, packed, m, n, k, alpha, accumulate); return; }
    if (l >= NB_LEVEL_AVX2) { drive(tile_avx2, 12, out, ldc, x, lda, packed, m, n, k, alpha, accumulate); return; }
#endif
    (void)l;
    drive(tile_portable, 8, out, ldc, x, lda, packed, m, n, k, alpha, accumulate);
}

int nb_gemm_nn_direct(float *out, size_t ldc, const float *x, size_t lda, const float *b, size_t ldb,
                      size_t m, size_t n, size_t k, float alpha, int accumulate) {
#if NB_GEMM_X86
    if (nb_kernels_level() < NB_LEVEL_AVX512) return 0;
    if (m == 0 || n == 0) return 1;
    if (k == 0) {
        if (!accumulate) for (size_t i = 0; i < m; i++) memset(out + i * ldc, 0, n * sizeof(float));
        return 1;
    }
    // One K block (attention's keys per block are few): each row block of x against every group
    // of 32 columns of B, whose rows stream from L1/L2 in place.
    for (size_t i0 = 0; i0 < m; i0 += MR512) {
        size_t mr = m - i0 < MR512 ? m - i0 : MR512;
        for (size_t j0 = 0; j0 < n; j0 += PANEL) {
            size_t nr = n - j0 < PANEL ? n - j0 : PANEL;
            tile_direct_avx512(mr, k, x + i0 * lda, lda, b + j0, ldb, out + i0 * ldc + j0, ldc, nr, alpha, accumulate);
        }
    }
    return 1;
#else
    (void)out; (void)ldc; (void)x; (void)lda; (void)b; (void)ldb; (void)m; (void)n; (void)k; (void)alpha; (void)accumulate;
    return 0;
#endif
}
