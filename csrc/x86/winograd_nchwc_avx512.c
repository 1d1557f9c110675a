#pragma GCC target("avx2,fma,avx512f,avx512dq,avx512bw,avx512vl")
/* Blocked Winograd F(4x4, 3x3) and F(2x2, 3x3) with an AVX-512 GEMM stage: the transforms
 * and the work split are the AVX2 driver's (csrc/x86/winograd_nchwc_avx2.c,
 * 8 channels per vector either way); the 36 GEMMs use a 12 x 32 micro-
 * kernel: 12 tiles of V broadcast against two 16-wide panels of U, one zmm
 * register each, 24 accumulators, 2 loads and 12 broadcasts per 24 FMAs
 * (the shape of MLAS's and BLIS's AVX-512 SGEMM kernels, 12 or 14 rows x
 * 32 columns). A last panel of 16 runs 12 x 16, an odd last block of 8
 * the lower halves of 12 x 16.
 */
#if defined(__x86_64__)
#include <immintrin.h>

#include "../ops/winograd.h"
#include "../ops/winograd_filter.h"

/* M (MR <= 12 tiles x PW outputs) = V (MR rows of ldv, kc channels) * U
 * panels (kc x 16 at u, and at u + 16 * kc when PW = 32; PW = 8: the lower
 * half of one panel of 8). Named accumulators: GCC keeps an array in
 * memory. */
static inline __attribute__((always_inline)) void micro(int64_t kc, const float *restrict v,
                                                        int64_t ldv, const float *restrict u,
                                                        const int MR, const int PW,
                                                        float *restrict m, int64_t ldm)
{
    __m512 c00 = _mm512_setzero_ps(), c10 = c00, c20 = c00, c30 = c00, c40 = c00, c50 = c00;
    __m512 c60 = c00, c70 = c00, c80 = c00, c90 = c00, c100 = c00, c110 = c00;
    __m512 c01 = c00, c11 = c00, c21 = c00, c31 = c00, c41 = c00, c51 = c00;
    __m512 c61 = c00, c71 = c00, c81 = c00, c91 = c00, c101 = c00, c111 = c00;
    const float *u1 = u + 16 * kc;
    const int64_t l2 = 2 * ldv, l3 = 3 * ldv;
    const float *v0 = v, *v3 = v + l3, *v6 = v + 2 * l3, *v9 = v + 3 * l3;
#pragma GCC unroll 2
    for (int64_t k = 0; k < kc; k++) {
        const __m512 b0 = PW == 8 ? _mm512_zextps256_ps512(_mm256_loadu_ps(u + 8 * k))
                                  : _mm512_loadu_ps(u + 16 * k);
        const __m512 b1 = PW == 32 ? _mm512_loadu_ps(u1 + 16 * k) : b0;
        __m512 a;
#define CNN_ROW(R, BASE, OFF)                                        \
        if (MR > R) {                                                \
            a = _mm512_set1_ps(BASE[OFF + k]);                       \
            c##R##0 = _mm512_fmadd_ps(a, b0, c##R##0);               \
            if (PW == 32)                                            \
                c##R##1 = _mm512_fmadd_ps(a, b1, c##R##1);           \
        }
        CNN_ROW(0, v0, 0) CNN_ROW(1, v0, ldv) CNN_ROW(2, v0, l2)
        CNN_ROW(3, v3, 0) CNN_ROW(4, v3, ldv) CNN_ROW(5, v3, l2)
        CNN_ROW(6, v6, 0) CNN_ROW(7, v6, ldv) CNN_ROW(8, v6, l2)
        CNN_ROW(9, v9, 0) CNN_ROW(10, v9, ldv) CNN_ROW(11, v9, l2)
#undef CNN_ROW
    }
#define CNN_ST(R)                                                    \
    if (MR > R) {                                                    \
        if (PW == 8)                                                 \
            _mm256_storeu_ps(m + R * ldm, _mm512_castps512_ps256(c##R##0)); \
        else                                                         \
            _mm512_storeu_ps(m + R * ldm, c##R##0);                  \
        if (PW == 32)                                                \
            _mm512_storeu_ps(m + R * ldm + 16, c##R##1);             \
    }
    CNN_ST(0) CNN_ST(1) CNN_ST(2) CNN_ST(3) CNN_ST(4) CNN_ST(5)
    CNN_ST(6) CNN_ST(7) CNN_ST(8) CNN_ST(9) CNN_ST(10) CNN_ST(11)
#undef CNN_ST
}

/* Rows [l0, l1) of one panel group: 12 at a time, a last 13 to 15 as
 * R - 4 and 4 (a row group of under 4 leaves FMA latency exposed), none
 * computed past l1 (a thread's share of 49 tiles, 25: 12, 9, 4). */
#define CNN_MR_CASE(R, PW) case R: micro(cp, vl, ldv, u, R, PW, ml, ldm); break;
#define PANEL_ROWS(PW)                                                                  \
    for (int64_t l = l0; l < l1;) {                                                     \
        const float *vl = vx + l * ldv;                                                 \
        float *ml = mk + (l - l0) * ldm;                                                \
        const int64_t r = l1 - l;                                                       \
        const int mr = r >= 16 || r == 12 ? 12 : r > 12 ? (int)r - 4 : (int)r;          \
        switch (mr) {                                                                   \
        CNN_MR_CASE(1, PW) CNN_MR_CASE(2, PW) CNN_MR_CASE(3, PW) CNN_MR_CASE(4, PW)     \
        CNN_MR_CASE(5, PW) CNN_MR_CASE(6, PW) CNN_MR_CASE(7, PW) CNN_MR_CASE(8, PW)     \
        CNN_MR_CASE(9, PW) CNN_MR_CASE(10, PW) CNN_MR_CASE(11, PW)                      \
        default: CNN_MR_CASE(12, PW)                                                    \
        }                                                                               \
        l += mr;                                                                        \
    }

/* cnn_wino_gemm_fn: panels two at a time, then a lone 16 or 8. */
static void gemm_avx512(int nxi, const float *V, int64_t vstride, int64_t ldv, const float *U,
                        int64_t kp, int64_t cp, float *M, int64_t mstride, int64_t ldm,
                        int64_t l0, int64_t l1, int64_t k0, int64_t k1)
{
    for (int xi = 0; xi < nxi; xi++) {
        const float *vx = V + xi * vstride;
        const float *ux = U + xi * kp * cp;
        float *mx = M + xi * mstride;
        for (int64_t k = k0; k < k1;) {
            const float *u = ux + k * cp;
            float *mk = mx + k - k0;
            if (k1 - k >= 32) {
                PANEL_ROWS(32)
                k += 32;
            } else if (kp - k >= 16) {
                PANEL_ROWS(16)
                k += 16;
            } else {
                PANEL_ROWS(8)
                k += 16;
            }
        }
    }
}

cnn_status cnn_winograd_nchwc_run_avx512(const cnn_conv2d_params *p, const float *packed,
                                         const float *x, const float *bias,
                                         const float *residual, float *y, int threads)
{
    return cnn_winograd_nchwc_drive(p, packed, x, bias, residual, y, threads, gemm_avx512, 12, 2,
                                    4);
}

cnn_status cnn_winograd2_nchwc_run_avx512(const cnn_conv2d_params *p, const float *packed,
                                          const float *x, const float *bias,
                                          const float *residual, float *y, int threads)
{
    return cnn_winograd_nchwc_drive(p, packed, x, bias, residual, y, threads, gemm_avx512, 12, 2,
                                    2);
}

/* U of one panel (csrc/ops/winograd_filter.h), this file's ISA. */
CNN_WINO_NO_CONTRACT void cnn_wino_filter_avx512(const float *w, int64_t C, int64_t nl,
                                                 int64_t width, float *dst, int64_t xs)
{
    cnn_wino_filter_panel(w, C, nl, width, dst, xs);
}

#endif
