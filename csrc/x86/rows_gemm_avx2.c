#pragma GCC target("avx2,fma")
/* The rows product (csrc/ops/rows_gemm.c) on AVX2: tiles of 6 rows of y by
 * 16 columns in 12 accumulators. A chunk of 32 columns of d takes its 32
 * weight rows (through a table of row pointers) over the whole column
 * block, each row read in order once (up to 8 KiB: the hardware prefetcher
 * follows it; 64-byte pieces of rows far apart, as tiles would read them
 * first, ran at half the speed), and they stay in L2 for every tile. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "../ops/rows_gemm.h"

#define MR 6
#define KC 32

/* y rows i0.. (mr of them), columns c..c+8*nv, += alpha * d w over this chunk. */
static inline __attribute__((always_inline)) void tile(const int mr, const int nv, int64_t i0,
                                                       int64_t c, int64_t kc, float alpha,
                                                       const float *d, int64_t ldd,
                                                       const float *const *wp, float *y,
                                                       int64_t ldy)
{
    __m256 acc[MR][2];
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < nv; v++)
            acc[r][v] = _mm256_setzero_ps();
    const float *dr = d + i0 * ldd;
    for (int64_t j = 0; j < kc; j++) {
        const float *wr = wp[j] + c;
        __m256 w0 = _mm256_loadu_ps(wr), w1 = nv > 1 ? _mm256_loadu_ps(wr + 8) : w0;
        for (int r = 0; r < mr; r++) {
            __m256 b = _mm256_broadcast_ss(dr + r * ldd + j);
            acc[r][0] = _mm256_fmadd_ps(b, w0, acc[r][0]);
            if (nv > 1)
                acc[r][1] = _mm256_fmadd_ps(b, w1, acc[r][1]);
        }
    }
    const __m256 a = _mm256_set1_ps(alpha);
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < nv; v++) {
            float *yr = y + (i0 + r) * ldy + c + 8 * v;
            _mm256_storeu_ps(yr, _mm256_fmadd_ps(a, acc[r][v], _mm256_loadu_ps(yr)));
        }
}

#define TILES(NV)                                                                        \
    switch (mr) {                                                                        \
    case 6: tile(6, NV, i0, c, kc, alpha, dj, ldd, wp, y, ldy); break;                   \
    case 5: tile(5, NV, i0, c, kc, alpha, dj, ldd, wp, y, ldy); break;                   \
    case 4: tile(4, NV, i0, c, kc, alpha, dj, ldd, wp, y, ldy); break;                   \
    case 3: tile(3, NV, i0, c, kc, alpha, dj, ldd, wp, y, ldy); break;                   \
    case 2: tile(2, NV, i0, c, kc, alpha, dj, ldd, wp, y, ldy); break;                   \
    default: tile(1, NV, i0, c, kc, alpha, dj, ldd, wp, y, ldy); break;                  \
    }

void cnn_rows_gemm_block_avx2(int64_t m, int64_t c0, int64_t c1, int64_t k, float alpha,
                              const float *d, int64_t ldd, const int64_t *rows, const float *w,
                              int64_t ldw, float *y, int64_t ldy)
{
    const float *wp[KC];
    for (int64_t j0 = 0; j0 < k; j0 += KC) {
        const int64_t kc = k - j0 < KC ? k - j0 : KC;
        for (int64_t j = 0; j < kc; j++)
            wp[j] = w + rows[j0 + j] * ldw;
        const float *dj = d + j0;
        int64_t c = c0;
        for (; c + 8 <= c1; c += c + 16 <= c1 ? 16 : 8) {
            for (int64_t i0 = 0; i0 < m; i0 += MR) {
                const int mr = m - i0 < MR ? (int)(m - i0) : MR;
                if (c + 16 <= c1)
                    TILES(2)
                else
                    TILES(1)
            }
        }
        if (c < c1)     /* the last columns (fewer than 8): the scalar loop */
            cnn_rows_gemm_block_ref(m, c, c1, kc, alpha, dj, ldd, rows + j0, w, ldw, y, ldy);
    }
}
#endif
