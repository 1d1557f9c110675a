#pragma GCC target("avx2,fma")
/* The AVX2 blocked conv's tile lists (csrc/ops/nchwc_rows.h cnn_ptile): a
 * padded small plane's pixels in tiles that share the taps not wholly in
 * the padding, the others skipped. The driver's tiles hold up to 12
 * pixels; these kernels (12 ymm accumulators: 6 pixels x 2 output blocks,
 * as nchwc_avx2.c's span_tile) run each in halves of up to 6.
 */
#if defined(__x86_64__)
#include <immintrin.h>

#include "nchwc_conv.h"

#define B CNN_NCHWC
#define INLINE CNN_INLINE

/* Pixels [p0, p0 + PX) of tile t, OB (1 or 2) output blocks: broadcast
 * each input channel of a pixel, multiply by that channel's 8 weights of
 * each block (the blocks wob floats apart). */
INLINE void half_tile(const crow *r, const int OB, const int PX, const cnn_ptile *t, int p0)
{
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a03 = a00, a04 = a00, a05 = a00;
    __m256 a10 = a00, a11 = a00, a12 = a00, a13 = a00, a14 = a00, a15 = a00;
    int64_t o[6];
    for (int P = 0; P < 6; P++)
        o[P] = t->xo[p0 + (P < PX ? P : 0)];
    const int64_t o0 = o[0], o1 = o[1], o2 = o[2], o3 = o[3], o4 = o[4], o5 = o[5];
    const int64_t wob = r->wob, kw = r->kw, taps = r->kh * r->kw;
    const int64_t dy = r->dh * r->xrow, dx = r->dw * B;
    for (int64_t ib = 0; ib < r->icb; ib++) {
        const float *xb = r->x + ib * r->xplane;
        const float *wb = r->w + ib * taps * B * B;
#pragma GCC unroll 1
        for (int64_t ky = t->ky0; ky < t->ky1; ky++)
#pragma GCC unroll 1
            for (int64_t kx = t->kx0; kx < t->kx1; kx++) {
                /* each pixel's pointer at this tap, opaque to GCC (the empty
                 * asm), so the broadcasts take constant offsets from them:
                 * from xt + oP GCC hoisted the 48 sums oP + ci to the stack
                 * and loaded one per broadcast, 0.6-0.8x the old time */
                const float *xt = xb + ky * dy + kx * dx;
                const float *x0 = xt + o0, *x1 = xt + o1, *x2 = xt + o2, *x3 = xt + o3,
                            *x4 = xt + o4, *x5 = xt + o5;
                __asm__("" : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3), "+r"(x4), "+r"(x5));
                const float *wp = wb + (ky * kw + kx) * B * B;
#pragma GCC unroll 8
                for (int ci = 0; ci < B; ci++) {
                    const __m256 w0 = _mm256_load_ps(wp + ci * B);
                    const __m256 w1 = OB > 1 ? _mm256_load_ps(wp + wob + ci * B) : w0;
#define CNN_PIX(P)                                                          \
                    if (PX > P) {                                           \
                        const __m256 v = _mm256_broadcast_ss(x##P + ci);    \
                        a0##P = _mm256_fmadd_ps(v, w0, a0##P);              \
                        if (OB > 1)                                         \
                            a1##P = _mm256_fmadd_ps(v, w1, a1##P);          \
                    }
                    CNN_PIX(0) CNN_PIX(1) CNN_PIX(2) CNN_PIX(3) CNN_PIX(4) CNN_PIX(5)
#undef CNN_PIX
                }
            }
    }
    /* bias, residual and the in-tile activation; the epilogue copied to a
     * local, so its switch is decided once a tile (see CNN_TILE_STORE) */
    const cnn_epilogue ep_ = *r->ep;
    const __m256 b0 = _mm256_load_ps(r->bias), b1 = OB > 1 ? _mm256_load_ps(r->bias + B) : b0;
#define CNN_OUT(ACC, BV, OFF, P)                                                 \
    if (PX > P) {                                                                \
        const int64_t at = (int64_t)t->q[p0 + P] * B + (OFF);                    \
        __m256 v = _mm256_add_ps(ACC, BV);                                       \
        if (r->res)                                                              \
            v = _mm256_add_ps(v, _mm256_loadu_ps(r->res + at));                  \
        _mm256_storeu_ps(r->y + at, cnn_act_v(&ep_, v));                         \
    }
    CNN_OUT(a00, b0, 0, 0) CNN_OUT(a01, b0, 0, 1) CNN_OUT(a02, b0, 0, 2)
    CNN_OUT(a03, b0, 0, 3) CNN_OUT(a04, b0, 0, 4) CNN_OUT(a05, b0, 0, 5)
    if (OB > 1) {
        const int64_t yp = r->yplane;
        CNN_OUT(a10, b1, yp, 0) CNN_OUT(a11, b1, yp, 1) CNN_OUT(a12, b1, yp, 2)
        CNN_OUT(a13, b1, yp, 3) CNN_OUT(a14, b1, yp, 4) CNN_OUT(a15, b1, yp, 5)
    }
#undef CNN_OUT
}

/* count tiles from t, each in halves of up to 6 pixels, as even as its
 * count allows (7 -> 4 + 3) */
INLINE void tiles(const crow *r, const int OB, const cnn_ptile *t, int64_t count)
{
    for (; count > 0; count--, t++)
        for (int h = (t->n + 5) / 6, left = t->n, p0 = 0; h > 0; h--) {
            const int m = left / h;
            switch (m) {
            case 6: half_tile(r, OB, 6, t, p0); break;
            case 5: half_tile(r, OB, 5, t, p0); break;
            case 4: half_tile(r, OB, 4, t, p0); break;
            case 3: half_tile(r, OB, 3, t, p0); break;
            case 2: half_tile(r, OB, 2, t, p0); break;
            default: half_tile(r, OB, 1, t, p0); break;
            }
            p0 += m;
            left -= m;
        }
}

void cnn_nchwc_tiles_o1_avx2(const crow *r, const cnn_ptile *t, int64_t count)
{
    tiles(r, 1, t, count);
}

void cnn_nchwc_tiles_o2_avx2(const crow *r, const cnn_ptile *t, int64_t count)
{
    tiles(r, 2, t, count);
}

#endif
