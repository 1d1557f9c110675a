#pragma GCC target("avx2,fma")
/* Blocked-layout (NCHW8c) kernels for AVX2/FMA: convolution, depthwise
 * convolution (per-plane ops and reorders: nchwc_planes_avx2.c).
 *
 * With 8 channels of a pixel in one vector, a convolution needs no im2col
 * and no packing at run time: for an output tile of PX pixels (<= 6) of a
 * row x OB (<= 2) blocks of 8 output channels, every input channel ci of
 * every tap contributes broadcast(x[ci] of each pixel) * w[ci][8 outputs],
 * 12 FMAs from 2 weight loads and 6 broadcasts, all from L1. This is the
 * scheme of ONNX Runtime MLAS's NCHWc convolution (SconvKernelFma3: filter
 * blocks x output pixels, broadcast input, input channels innermost) and
 * of oneDNN's nChw8c direct convolution; a 1x1 stride-1 convolution is the
 * same kernel over the image flattened to one row. A stem reads its RGB
 * input in plain NCHW (cb = 1), as MLAS's "NCHW input" variant does, so no
 * reorder of the image is needed. Depthwise convolution is 8 channels per
 * vector with no shuffles for any stride (XNNPACK's channel-tiled dwconv).
 * Bias, residual and cheap activations are applied as each tile is
 * stored; exp-based activations over each stored row (the caller level's act_row).
 */
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "../ops/pool2d.h"
#include "nchwc_conv.h"
#include "pool.h"

#define B CNN_NCHWC
#define INLINE CNN_INLINE

/* ------------------------------------------------------------ convolution */

/* The store of a conv tile's PX pixels x OB output blocks from the named
 * accumulators a0P / a1P at output pixel OX0: bias, residual, the in-tile
 * activation. A macro, not a function, so the accumulators stay named
 * registers in every tile kind (passing them as arrays spilled them, 7-10 %
 * on short-reduction 1x1 convs, 16->96 @112x112: 0.49 -> 0.54 ms). The
 * epilogue is copied to a local first: cnn_act_v's switch is then decided once
 * per tile, not once per stored vector (ep->act reloaded after every float
 * store). */
#define CNN_TILE_OUT(ACC, BV, Y, RES, P)                                         \
    if (PX > P) {                                                           \
        __m256 v = _mm256_add_ps(ACC, BV);                                  \
        if (RES)                                                            \
            v = _mm256_add_ps(v, _mm256_loadu_ps(RES + P * B));             \
        _mm256_storeu_ps(Y + P * B, cnn_act_v(&ep_, v));                        \
    }
#define CNN_TILE_STORE(OX0)                                                               \
    do {                                                                                  \
        const cnn_epilogue ep_ = *r->ep;                                                  \
        const __m256 b0 = _mm256_load_ps(r->bias);                                        \
        const __m256 b1 = OB > 1 ? _mm256_load_ps(r->bias + B) : b0;                      \
        float *y0 = r->y + (OX0) * B, *y1 = y0 + r->yplane;                               \
        const float *r0 = r->res ? r->res + (OX0) * B : NULL, *r1 = r0 ? r0 + r->yplane : NULL; \
        CNN_TILE_OUT(a00, b0, y0, r0, 0) CNN_TILE_OUT(a01, b0, y0, r0, 1) CNN_TILE_OUT(a02, b0, y0, r0, 2) \
        CNN_TILE_OUT(a03, b0, y0, r0, 3) CNN_TILE_OUT(a04, b0, y0, r0, 4) CNN_TILE_OUT(a05, b0, y0, r0, 5) \
        if (OB > 1) {                                                                     \
            CNN_TILE_OUT(a10, b1, y1, r1, 0) CNN_TILE_OUT(a11, b1, y1, r1, 1) CNN_TILE_OUT(a12, b1, y1, r1, 2) \
            CNN_TILE_OUT(a13, b1, y1, r1, 3) CNN_TILE_OUT(a14, b1, y1, r1, 4) CNN_TILE_OUT(a15, b1, y1, r1, 5) \
        }                                                                                 \
    } while (0)

/* PX output pixels from ox0 (input column ix0 for tap kx = 0) x OB output
 * blocks, taps kx in [kx0, kx1); CB input channels per block. */
INLINE void conv_tile(const crow *r, const int OB, const int PX, const int CB, const int K,
                      const int S, int64_t ox0, int64_t ix0, int64_t kx0, int64_t kx1)
{
    /* named accumulators, not arrays: GCC keeps arrays in memory here */
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a03 = a00, a04 = a00, a05 = a00;
    __m256 a10 = a00, a11 = a00, a12 = a00, a13 = a00, a14 = a00, a15 = a00;
    /* K, S > 0: a K x K kernel, stride S, dilation 1, known at compile
     * time (interior tiles only: every kx tap) so the tap loop unrolls and
     * the broadcasts have constant offsets; 0: read them from r (S may be
     * fixed alone) */
    const int64_t kw = K ? K : r->kw, dh = K ? 1 : r->dh, dw = K ? 1 : r->dw;
    const int64_t xs = (S ? S : r->sw) * CB, taps = (K ? K * K : r->kh * r->kw);
    if (K) {
        kx0 = 0;
        kx1 = K;
    }
    for (int64_t ib = 0; ib < r->icb; ib++) {
        const float *xb = r->x + ib * r->xplane;
        const float *wb = r->w + ib * taps * CB * B;
        for (int64_t ky = r->ky0; ky < r->ky1; ky++) {
            const int64_t row = (r->iy0 + ky * dh) * r->xrow;
#pragma GCC unroll 7
            for (int64_t kx = kx0; kx < kx1; kx++) {
                const float *xp = xb + row + (ix0 + kx * dw) * CB;
                const float *wp = wb + (ky * kw + kx) * CB * B;
#pragma GCC unroll 8
                for (int ci = 0; ci < CB; ci++) {
                    const __m256 w0 = _mm256_load_ps(wp + ci * B);
                    const __m256 w1 = OB > 1 ? _mm256_load_ps(wp + r->wob + ci * B) : w0;
#define CNN_PIX(P)                                                          \
                    if (PX > P) {                                           \
                        const __m256 v = _mm256_broadcast_ss(xp + P * xs + ci); \
                        a0##P = _mm256_fmadd_ps(v, w0, a0##P);              \
                        if (OB > 1)                                         \
                            a1##P = _mm256_fmadd_ps(v, w1, a1##P);          \
                    }
                    CNN_PIX(0) CNN_PIX(1) CNN_PIX(2) CNN_PIX(3) CNN_PIX(4) CNN_PIX(5)
#undef CNN_PIX
                }
            }
        }
    }
    CNN_TILE_STORE(ox0);
}

/* conv_tile for a 1x1 stride-1 convolution over blocked input (the image
 * flattened to one row): the pixels' inputs are 8 floats apart, so every
 * broadcast has a constant offset and the loop is over input blocks only. */
INLINE void pw_tile(const crow *r, const int OB, const int PX, int64_t ox0, const char *pf,
                    int64_t pfn)
{
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a03 = a00, a04 = a00, a05 = a00;
    __m256 a10 = a00, a11 = a00, a12 = a00, a13 = a00, a14 = a00, a15 = a00;
    const float *xp = r->x + ox0 * B, *wp = r->w;
    const int64_t wob = r->wob, xplane = r->xplane;
    const int64_t per = cnn_prefetch_share(pfn, r->icb);
    for (int64_t ib = 0; ib < r->icb; ib++, xp += xplane, wp += B * B) {
        cnn_prefetch_slice(pf, pfn, per, ib);
#pragma GCC unroll 8
        for (int ci = 0; ci < B; ci++) {
            const __m256 w0 = _mm256_load_ps(wp + ci * B);
            const __m256 w1 = OB > 1 ? _mm256_load_ps(wp + wob + ci * B) : w0;
#define CNN_PIX(P)                                                          \
            if (PX > P) {                                                   \
                const __m256 v = _mm256_broadcast_ss(xp + P * B + ci);      \
                a0##P = _mm256_fmadd_ps(v, w0, a0##P);                      \
                if (OB > 1)                                                 \
                    a1##P = _mm256_fmadd_ps(v, w1, a1##P);                  \
            }
            CNN_PIX(0) CNN_PIX(1) CNN_PIX(2) CNN_PIX(3) CNN_PIX(4) CNN_PIX(5)
#undef CNN_PIX
        }
    }
    CNN_TILE_STORE(ox0);
}

/* conv_tile for a small 3x3 plane whose every tap is inside the (padded)
 * input, the output taken as one raster row of oh*ow pixels: a tile may
 * span output rows, so a 7-wide row no longer splits into tiles of 4 and 3
 * pixels (8 and 6 accumulators of 12; 512->512 @7x7). Pixel q reads from
 * input row (q / ow) * S and column (q % ow) * S. */
INLINE void span_tile(const crow *r, const int OB, const int PX, const int S, int64_t q0,
                      int64_t ow)
{
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a03 = a00, a04 = a00, a05 = a00;
    __m256 a10 = a00, a11 = a00, a12 = a00, a13 = a00, a14 = a00, a15 = a00;
    int64_t o[6];
    for (int P = 0; P < 6; P++) {
        const int64_t q = q0 + (P < PX ? P : 0);
        o[P] = (q / ow) * S * r->xrow + (q % ow) * S * B;
    }
    const int64_t o0 = o[0], o1 = o[1], o2 = o[2], o3 = o[3], o4 = o[4], o5 = o[5];
    const int64_t xrow = r->xrow;
    for (int64_t ib = 0; ib < r->icb; ib++) {
        const float *xb = r->x + ib * r->xplane;
        const float *wb = r->w + ib * 9 * B * B;
#pragma GCC unroll 3
        for (int ky = 0; ky < 3; ky++)
#pragma GCC unroll 3
            for (int kx = 0; kx < 3; kx++) {
                const float *xt = xb + ky * xrow + kx * B;
                const float *wp = wb + (ky * 3 + kx) * B * B;
#pragma GCC unroll 8
                for (int ci = 0; ci < B; ci++) {
                    const __m256 w0 = _mm256_load_ps(wp + ci * B);
                    const __m256 w1 = OB > 1 ? _mm256_load_ps(wp + r->wob + ci * B) : w0;
#define CNN_PIX(P)                                                          \
                    if (PX > P) {                                           \
                        const __m256 v = _mm256_broadcast_ss(xt + o##P + ci); \
                        a0##P = _mm256_fmadd_ps(v, w0, a0##P);              \
                        if (OB > 1)                                         \
                            a1##P = _mm256_fmadd_ps(v, w1, a1##P);          \
                    }
                    CNN_PIX(0) CNN_PIX(1) CNN_PIX(2) CNN_PIX(3) CNN_PIX(4) CNN_PIX(5)
#undef CNN_PIX
                }
            }
    }
    CNN_TILE_STORE(q0);
}

#define DEFINE_SPAN_ROW(NAME, OB, S)                                               \
    static void NAME(const crow *r, int64_t x0, int64_t x1, int64_t ow)            \
    {                                                                              \
        int64_t q = x0;                                                            \
        for (int64_t t = (x1 - x0 + 5) / 6, left = x1 - x0; t > 0; t--) {          \
            const int64_t m = left / t;                                            \
            switch (m) {                                                           \
            case 6: span_tile(r, OB, 6, S, q, ow); break;                          \
            case 5: span_tile(r, OB, 5, S, q, ow); break;                          \
            case 4: span_tile(r, OB, 4, S, q, ow); break;                          \
            case 3: span_tile(r, OB, 3, S, q, ow); break;                          \
            case 2: span_tile(r, OB, 2, S, q, ow); break;                          \
            default: span_tile(r, OB, 1, S, q, ow); break;                         \
            }                                                                      \
            q += m;                                                                \
            left -= m;                                                             \
        }                                                                          \
    }

DEFINE_SPAN_ROW(span_row_o2_s1, 2, 1)
DEFINE_SPAN_ROW(span_row_o1_s1, 1, 1)
DEFINE_SPAN_ROW(span_row_o2_s2, 2, 2)
DEFINE_SPAN_ROW(span_row_o1_s2, 1, 2)

#define DEFINE_PW_ROW(NAME, OB)                                             \
    static void NAME(const crow *r, int64_t x0, int64_t x1)                 \
    {                                                                       \
        int64_t ox = x0;                                                    \
        const char *pf = r->pf;                                             \
        int64_t pf_left = pf ? r->pf_bytes : 0;                             \
        /* tiles as equal as possible: 49 -> 6 x 4 + 5 x 5, not 8 x 6 + 1 \
         * (a 1-pixel tile has 2 FMA chains: a quarter of the FMA rate) */ \
        for (int64_t t = (x1 - x0 + 5) / 6, left = x1 - x0; t > 0; t--) {   \
            const int64_t m = left / t;                                     \
            const int64_t pfn = pf_left > 0 ? cnn_prefetch_share(pf_left, t) : 0; \
            switch (m) {                                                    \
            case 6: pw_tile(r, OB, 6, ox, pf, pfn); break;              \
            case 5: pw_tile(r, OB, 5, ox, pf, pfn); break;              \
            case 4: pw_tile(r, OB, 4, ox, pf, pfn); break;              \
            case 3: pw_tile(r, OB, 3, ox, pf, pfn); break;              \
            case 2: pw_tile(r, OB, 2, ox, pf, pfn); break;              \
            default: pw_tile(r, OB, 1, ox, pf, pfn); break;             \
            }                                                               \
            ox += m;                                                        \
            left -= m;                                                      \
            pf += pfn;                                                      \
            pf_left -= pfn;                                                 \
        }                                                                   \
    }

DEFINE_PW_ROW(pw_row_o2, 2)
DEFINE_PW_ROW(pw_row_o1, 1)

/* Output pixels [x0, x1) of a row: interior tiles of 6 with every tap
 * inside the image, border pixels one by one with their taps clipped. */
#define DEFINE_ROW(NAME, OB, CB, K, S)                                                        \
    static void NAME(const crow *r, int64_t x0, int64_t x1, int64_t in_lo, int64_t in_hi, \
                     int64_t pl, int64_t w)                                             \
    {                                                                                   \
        int64_t ox = x0;                                                                \
        while (ox < x1) {                                                               \
            const int64_t ix0 = ox * r->sw - pl;                                        \
            if (ox < in_lo || ox >= in_hi) {                                            \
                int64_t k0 = 0, k1 = r->kw;                                             \
                while (k0 < k1 && ix0 + k0 * r->dw < 0) k0++;                           \
                while (k1 > k0 && ix0 + (k1 - 1) * r->dw >= w) k1--;                    \
                conv_tile(r, OB, 1, CB, 0, 0, ox, ix0, k0, k1);                         \
                ox++;                                                                   \
                continue;                                                               \
            }                                                                           \
            const int64_t n = (in_hi < x1 ? in_hi : x1) - ox;                           \
            for (int64_t t = (n + 5) / 6, left = n; t > 0; t--) {                       \
                const int64_t m = left / t, ix = ox * r->sw - pl;                       \
                switch (m) {                                                            \
                case 6: conv_tile(r, OB, 6, CB, K, S, ox, ix, 0, r->kw); break;         \
                case 5: conv_tile(r, OB, 5, CB, K, S, ox, ix, 0, r->kw); break;         \
                case 4: conv_tile(r, OB, 4, CB, K, S, ox, ix, 0, r->kw); break;         \
                case 3: conv_tile(r, OB, 3, CB, K, S, ox, ix, 0, r->kw); break;         \
                case 2: conv_tile(r, OB, 2, CB, K, S, ox, ix, 0, r->kw); break;         \
                default: conv_tile(r, OB, 1, CB, K, S, ox, ix, 0, r->kw); break;        \
                }                                                                       \
                ox += m;                                                                \
                left -= m;                                                              \
            }                                                                           \
        }                                                                               \
    }

DEFINE_ROW(row_o2_c8, 2, 8, 0, 0)
DEFINE_ROW(row_o1_c8, 1, 8, 0, 0)
DEFINE_ROW(row_o2_c1, 2, 1, 0, 0)
DEFINE_ROW(row_o1_c1, 1, 1, 0, 0)
DEFINE_ROW(row_o2_c8_k1s2, 2, 8, 1, 2)
DEFINE_ROW(row_o1_c8_k1s2, 1, 8, 1, 2)
DEFINE_ROW(row_o2_c8_k3s1, 2, 8, 3, 1)
DEFINE_ROW(row_o1_c8_k3s1, 1, 8, 3, 1)
DEFINE_ROW(row_o2_c8_k3s2, 2, 8, 3, 2)
DEFINE_ROW(row_o1_c8_k3s2, 1, 8, 3, 2)
DEFINE_ROW(row_o2_c1_s2, 2, 1, 0, 2)
DEFINE_ROW(row_o1_c1_s2, 1, 1, 0, 2)
DEFINE_ROW(row_o2_c1_k3s2, 2, 1, 3, 2)
DEFINE_ROW(row_o1_c1_k3s2, 1, 1, 3, 2)

const cnn_nchwc_rows cnn_nchwc_pair_rows_avx2 = {
    .row = {
        [CNN_ROW_C8] = {row_o1_c8, row_o2_c8},
        [CNN_ROW_C1] = {row_o1_c1, row_o2_c1},
        [CNN_ROW_C8_K1S2] = {row_o1_c8_k1s2, row_o2_c8_k1s2},
        [CNN_ROW_C8_K3S1] = {row_o1_c8_k3s1, row_o2_c8_k3s1},
        [CNN_ROW_C8_K3S2] = {row_o1_c8_k3s2, row_o2_c8_k3s2},
        [CNN_ROW_C1_S2] = {row_o1_c1_s2, row_o2_c1_s2},
        [CNN_ROW_C1_K3S2] = {row_o1_c1_k3s2, row_o2_c1_k3s2},
    },
    .pw = {pw_row_o1, pw_row_o2},
    .span = {{span_row_o1_s1, span_row_o2_s1}, {span_row_o1_s2, span_row_o2_s2}},
    .tiles = {cnn_nchwc_tiles_o1_avx2, cnn_nchwc_tiles_o2_avx2},
};

/* -------------------------------------------------------------- depthwise */

/* PX pixels of one block's output row from ox0, taps kx in [kx0, kx1).
 * KH, KW, SW > 0 fix the kernel size and stride (dilation 1) at compile
 * time, so the tap loops unroll and a stride-1 row's overlapping input
 * loads are shared between neighbouring pixels; 0 reads them from r. */
INLINE void dw_tile(const float *xb, const float *wb, const crow *r, const int PX, const int KH,
                    const int KW, const int SW, int64_t ox0, int64_t ix0, int64_t kx0,
                    int64_t kx1, __m256 bv, const float *res, float *y)
{
    __m256 a0 = bv, a1 = bv, a2 = bv, a3 = bv, a4 = bv, a5 = bv, a6 = bv, a7 = bv;
    const int64_t kw = KW ? KW : r->kw, dw = KW ? 1 : r->dw, dh = KH ? 1 : r->dh;
    const int64_t xs = (SW ? SW : r->sw) * B;
    if (KW) {       /* fixed-size calls are interior pixels: every kx tap */
        kx0 = 0;
        kx1 = KW;
    }
    for (int64_t ky = r->ky0; ky < r->ky1; ky++) {
        const float *xr = xb + (r->iy0 + ky * dh) * r->xrow;
        /* whole rows of taps unrolled (up to 7x7): neighbouring pixels share loads */
#pragma GCC unroll 7
        for (int64_t kx = kx0; kx < kx1; kx++) {
            const __m256 wv = _mm256_load_ps(wb + (ky * kw + kx) * B);
            const float *xp = xr + (ix0 + kx * dw) * B;
#define CNN_PIX(P) \
            if (PX > P) a##P = _mm256_fmadd_ps(_mm256_loadu_ps(xp + P * xs), wv, a##P);
            CNN_PIX(0) CNN_PIX(1) CNN_PIX(2) CNN_PIX(3) CNN_PIX(4) CNN_PIX(5) CNN_PIX(6) CNN_PIX(7)
#undef CNN_PIX
        }
    }
    const cnn_epilogue ep_ = *r->ep;   /* see conv_tile */
    y += ox0 * B;
    if (res)
        res += ox0 * B;
#define CNN_OUT(P)                                                          \
    if (PX > P) {                                                           \
        __m256 v = a##P;                                                    \
        if (res)                                                            \
            v = _mm256_add_ps(v, _mm256_loadu_ps(res + P * B));             \
        _mm256_storeu_ps(y + P * B, cnn_act_v(&ep_, v));                       \
    }
    CNN_OUT(0) CNN_OUT(1) CNN_OUT(2) CNN_OUT(3) CNN_OUT(4) CNN_OUT(5) CNN_OUT(6) CNN_OUT(7)
#undef CNN_OUT
}

/* One output row of one block: borders pixel by pixel with clipped taps,
 * the interior 8, 4, then 1 pixel at a time with every tap. */
#define DEFINE_DW_ROW(NAME, KH, KW, SW)                                                  \
    static void NAME(const float *xb, const float *wb, const crow *r, int64_t ow,        \
                     int64_t in_lo, int64_t in_hi, int64_t pl, int64_t w, __m256 bv,     \
                     const float *res, float *yr)                                        \
    {                                                                                    \
        const int64_t sw = r->sw;                                                        \
        int64_t ox = 0;                                                                  \
        while (ox < ow) {                                                                \
            const int64_t ix0 = ox * sw - pl;                                            \
            if (ox < in_lo || ox >= in_hi) {                                             \
                int64_t k0 = 0, k1 = r->kw;                                              \
                while (k0 < k1 && ix0 + k0 * r->dw < 0) k0++;                            \
                while (k1 > k0 && ix0 + (k1 - 1) * r->dw >= w) k1--;                     \
                dw_tile(xb, wb, r, 1, 0, 0, 0, ox, ix0, k0, k1, bv, res, yr);            \
                ox++;                                                                    \
                continue;                                                                \
            }                                                                            \
            const int64_t cnt = in_hi - ox;                                              \
            for (int64_t t = (cnt + 7) / 8, left = cnt; t > 0; t--) {                    \
                const int64_t m = left / t, ix = ox * sw - pl;                           \
                switch (m) {                                                             \
                case 8: dw_tile(xb, wb, r, 8, KH, KW, SW, ox, ix, 0, r->kw, bv, res, yr); break; \
                case 7: dw_tile(xb, wb, r, 7, KH, KW, SW, ox, ix, 0, r->kw, bv, res, yr); break; \
                case 6: dw_tile(xb, wb, r, 6, KH, KW, SW, ox, ix, 0, r->kw, bv, res, yr); break; \
                case 5: dw_tile(xb, wb, r, 5, KH, KW, SW, ox, ix, 0, r->kw, bv, res, yr); break; \
                case 4: dw_tile(xb, wb, r, 4, KH, KW, SW, ox, ix, 0, r->kw, bv, res, yr); break; \
                case 3: dw_tile(xb, wb, r, 3, KH, KW, SW, ox, ix, 0, r->kw, bv, res, yr); break; \
                case 2: dw_tile(xb, wb, r, 2, KH, KW, SW, ox, ix, 0, r->kw, bv, res, yr); break; \
                default: dw_tile(xb, wb, r, 1, KH, KW, SW, ox, ix, 0, r->kw, bv, res, yr); break; \
                }                                                                        \
                ox += m;                                                                 \
                left -= m;                                                               \
            }                                                                            \
        }                                                                                \
    }

DEFINE_DW_ROW(dw_row_any, 0, 0, 0)
DEFINE_DW_ROW(dw_row_3s1, 3, 3, 1)
DEFINE_DW_ROW(dw_row_3s2, 3, 3, 2)
DEFINE_DW_ROW(dw_row_5s1, 5, 5, 1)
DEFINE_DW_ROW(dw_row_5s2, 5, 5, 2)
DEFINE_DW_ROW(dw_row_7s1, 7, 7, 1)   /* ConvNeXt's */

typedef void (*dw_row_fn)(const float *, const float *, const crow *, int64_t, int64_t, int64_t,
                          int64_t, int64_t, __m256, const float *, float *);

/* The row kernel of p; its interior output columns (every tap kx inside [0, w)). */
static dw_row_fn dw_pick(const cnn_conv2d_params *p, int64_t *in_lo, int64_t *in_hi)
{
    int64_t lo = (p->pl + p->sw - 1) / p->sw;
    int64_t last = p->w - 1 + p->pl - (p->kw - 1) * p->dw;
    int64_t hi = last < 0 ? 0 : last / p->sw + 1;
    if (hi > p->ow) hi = p->ow;
    if (lo > hi) lo = hi;
    *in_lo = lo, *in_hi = hi;
    if (p->dh == 1 && p->dw == 1 && p->kh == p->kw && (p->kh == 3 || p->kh == 5) &&
        p->sw == p->sh && (p->sw == 1 || p->sw == 2))
        return p->kh == 3 ? (p->sw == 1 ? dw_row_3s1 : dw_row_3s2)
                          : (p->sw == 1 ? dw_row_5s1 : dw_row_5s2);
    if (p->dh == 1 && p->dw == 1 && p->kh == 7 && p->kw == 7 && p->sw == 1 && p->sh == 1)
        return dw_row_7s1;
    return dw_row_any;
}

/* One depthwise call's arguments and plan, for the pool's units. */
typedef struct dw_job {
    const cnn_conv2d_nchwc *pk;
    const float *x, *residual;
    float *y, *scratch, *partial;
    cnn_act_row_fn act;
    dw_row_fn row;
    int64_t chunks, rpu, win, wp, in_lo, in_hi;
} dw_job;

/* Unit u: rpu output rows of one (image, block) plane; scratch: the
 * slot's window. */
static void dw_unit(void *ctx, int64_t u, int slot)
{
    const dw_job *jb = (const dw_job *)ctx;
    const cnn_conv2d_nchwc *pk = jb->pk;
    const cnn_conv2d_params *p = &pk->p;
    const int64_t h = p->h, w = p->w, oh = p->oh, ow = p->ow, cbs = pk->ocb;
    const int64_t taps = p->kh * p->kw, chunks = jb->chunks, rpu = jb->rpu, win = jb->win;
    const int64_t wp = jb->wp, in_lo = jb->in_lo, in_hi = jb->in_hi;
    const float *x = jb->x, *residual = jb->residual;
    float *y = jb->y, *scratch = jb->scratch, *partial = jb->partial;
    const cnn_act_row_fn act = jb->act;
    const dw_row_fn row = jb->row;
    const int64_t q = u / chunks;   /* q = img * cbs + block */
    const int64_t oy0 = u % chunks * rpu, oy1 = oy0 + rpu < oh ? oy0 + rpu : oh;
    const int64_t blk = q % cbs;
    const float *xb = x + q * h * w * B;
    const float *wb = pk->w + blk * taps * B;
    const __m256 bv = _mm256_load_ps(pk->bias + blk * B);
    crow r;
    r.kh = p->kh; r.kw = p->kw; r.sw = p->sw; r.dh = p->dh; r.dw = p->dw;
    r.ep = &p->ep;
    if (scratch) {
        float *wbuf = scratch + slot * win;
        const int64_t iy_first = oy0 - p->pt, nrows = oy1 - 1 - oy0 + (p->kh - 1) * p->dh + 1;
        for (int64_t k = 0; k < nrows; k++) {
            const int64_t iy = iy_first + k;
            float *d = wbuf + k * wp * B;
            if (iy < 0 || iy >= h) {
                memset(d, 0, (size_t)(wp * B) * sizeof(float));
                continue;
            }
            memset(d, 0, (size_t)(p->pl * B) * sizeof(float));
            memcpy(d + p->pl * B, xb + iy * w * B, (size_t)(w * B) * sizeof(float));
            memset(d + (p->pl + w) * B, 0, (size_t)(p->pr * B) * sizeof(float));
        }
        r.xrow = wp * B;
        r.ky0 = 0;
        r.ky1 = p->kh;
        for (int64_t oy = oy0; oy < oy1; oy++) {
            r.iy0 = oy - oy0;
            float *yr = y + (q * oh + oy) * ow * B;
            const float *res = residual ? residual + (q * oh + oy) * ow * B : NULL;
            row(wbuf, wb, &r, ow, 0, ow, 0, wp, bv, res, yr);
        }
    } else {
        r.xrow = w * B;
        for (int64_t oy = oy0; oy < oy1; oy++) {
            r.iy0 = oy * p->sh - p->pt;
            r.ky0 = 0;
            r.ky1 = p->kh;
            while (r.ky0 < r.ky1 && r.iy0 + r.ky0 * p->dh < 0) r.ky0++;
            while (r.ky1 > r.ky0 && r.iy0 + (r.ky1 - 1) * p->dh >= h) r.ky1--;
            float *yr = y + (q * oh + oy) * ow * B;
            const float *res = residual ? residual + (q * oh + oy) * ow * B : NULL;
            row(xb, wb, &r, ow, in_lo, in_hi, p->pl, w, bv, res, yr);
        }
    }
    if (!cnn_act_in_tile(p->ep.act))
        act(&p->ep, y + (q * oh + oy0) * ow * B, y + (q * oh + oy0) * ow * B,
            (oy1 - oy0) * ow * B);
    if (partial)
        _mm256_storeu_ps(partial + u * B,
                         cnn_nchwc_lane_sums(y + (q * oh + oy0) * ow * B, (oy1 - oy0) * ow));
}

/* pool, if not NULL: the mean over the plane of every output channel,
 * blocked (N, ceil(K/8), 8), taken from each unit's rows while they are
 * still in L1 (the squeeze of a squeeze-excitation block after its
 * depthwise conv, which otherwise reads the whole output again); act:
 * the rows of the activations cnn_act_v leaves out. */
cnn_status cnn_conv2d_nchwc_dw_act_avx2(const cnn_conv2d_nchwc *pk, int64_t n, const float *x,
                                        const float *residual, float *y, float *pool,
                                        int threads, cnn_act_row_fn act)
{
    const cnn_conv2d_params *p = &pk->p;
    const int64_t w = p->w, oh = p->oh, ow = p->ow, cbs = pk->ocb;
    const int64_t taps = p->kh * p->kw;
    const int64_t units = n * cbs * oh;
    if ((double)units * ow * taps * B < 65536.0)   /* see cnn_nchwc_conv_drive */
        threads = 1;
    int64_t in_lo, in_hi;
    const dw_row_fn row = dw_pick(p, &in_lo, &in_hi);
    /* Rows per unit: at least 64 pixels where the plane allows, so that an
     * exp-based activation runs over spans long enough for its 4-vector
     * loop (1152@7x7 5x5 + SiLU: a row is 7 vectors) */
    const int pad_win = p->sw == 1 && p->sh == 1 && (p->pt | p->pb | p->pl | p->pr) &&
                        (p->kw >= 5 ? ow <= 32 : ow <= 14);
    int64_t rpu = ow >= 64 ? 1 : (64 + ow - 1) / ow;
    if (pad_win && rpu < 2 * (p->kh - 1) * p->dh)   /* a window reads at most 1.5x its rows */
        rpu = 2 * (p->kh - 1) * p->dh;
    if (rpu > oh)
        rpu = oh;
    const int64_t chunks = (oh + rpu - 1) / rpu;
    const int64_t nunits = n * cbs * chunks;
    if (threads > nunits) threads = (int)nunits;
    /* Small stride-1 planes run on a zero-padded copy of each unit's input
     * rows, made by the thread in its own L1-sized window: border pixels
     * (one at a time, one FMA chain) are 4 of every 7 or 14 (5x5) or 2 of
     * every 7 (3x3) there (672@14x14 5x5 0.146 -> 0.106 ms, 1152@7x7 3x3
     * 34.5 -> 31.7 us with a whole padded copy first; the window also
     * saves that copy's pass over memory). On larger 3x3 planes the copy
     * cost more than it saved (MobileNetV2's stride-1 layers 0.86 -> 0.99
     * ms). */
    const int64_t wp = w + p->pl + p->pr;
    const int64_t win_rows = (rpu - 1) * p->sh + (p->kh - 1) * p->dh + 1;
    float *scratch = NULL;
    int64_t win = 0, all = 0;
    if (pad_win && cnn_mul_ok(win_rows, wp * B, &win) && cnn_mul_ok(win, threads, &all))
        scratch = cnn_alloc_floats(all);   /* NULL: the kernels clip the borders instead */
    float *partial = NULL;              /* per unit: its rows' lane sums */
    if (pool && !(partial = cnn_alloc_floats(nunits * B))) {
        free(scratch);
        return CNN_ERR_OOM;
    }
    dw_job jb = {pk, x, residual, y, scratch, partial, act, row, chunks, rpu, win, wp, in_lo, in_hi};
    cnn_pool_for(threads, nunits, NULL, cnn_threads_steal(), dw_unit, &jb);
    if (partial) {
        cnn_nchwc_pool_means(partial, n * cbs, chunks, oh * ow, pool);
        free(partial);
    }
    free(scratch);
    return CNN_OK;
}

cnn_status cnn_conv2d_nchwc_dw_avx2(const cnn_conv2d_nchwc *pk, int64_t n, const float *x,
                                    const float *residual, float *y, float *pool, int threads)
{
    return cnn_conv2d_nchwc_dw_act_avx2(pk, n, x, residual, y, pool, threads, cnn_act_row_avx2);
}

void cnn_nchwc_dw_rows_avx2(const cnn_conv2d_nchwc *pk, int64_t blk, const float *xb, int64_t r0,
                            int64_t oy0, int64_t oy1, float *y, float *sums)
{
    const cnn_conv2d_params *p = &pk->p;
    int64_t in_lo, in_hi;
    const dw_row_fn row = dw_pick(p, &in_lo, &in_hi);
    const float *wb = pk->w + blk * p->kh * p->kw * B;
    const __m256 bv = _mm256_load_ps(pk->bias + blk * B);
    crow r = {.kh = p->kh, .kw = p->kw, .sw = p->sw, .dh = p->dh, .dw = p->dw, .ep = &p->ep,
              .xrow = p->w * B};
    for (int64_t oy = oy0; oy < oy1; oy++) {
        const int64_t iy = oy * p->sh - p->pt;
        r.ky0 = 0, r.ky1 = p->kh;
        while (r.ky0 < r.ky1 && iy + r.ky0 * p->dh < 0) r.ky0++;
        while (r.ky1 > r.ky0 && iy + (r.ky1 - 1) * p->dh >= p->h) r.ky1--;
        r.iy0 = iy - r0;    /* the window's rows: image row r0 is its first */
        row(xb, wb, &r, p->ow, in_lo, in_hi, p->pl, p->w, bv, NULL, y + (oy - oy0) * p->ow * B);
    }
    if (!cnn_act_in_tile(p->ep.act))   /* the active level's row: zmm SiLU on AVX-512 */
        cnn_plat()->act_row(&p->ep, y, y, (oy1 - oy0) * p->ow * B);
    if (sums)   /* the squeeze's sums, from rows still in L1 */
        _mm256_storeu_ps(sums, _mm256_add_ps(_mm256_loadu_ps(sums),
                                             cnn_nchwc_lane_sums(y, (oy1 - oy0) * p->ow)));
}

#endif
