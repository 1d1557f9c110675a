#pragma GCC target("avx2,fma,avx512f,avx512dq,avx512bw,avx512vl")
/* Blocked-layout (NCHW8c) convolution tiles for AVX-512: the AVX2 scheme
 * (csrc/x86/nchwc_avx2.c: broadcast one input channel of a pixel, multiply
 * by that channel's weights for the tile's output channels) with 16 output
 * channels, two blocks of 8, per zmm register. A tile is PX (<= 12) output
 * pixels x one or two output block pairs: up to 24 accumulators, and per
 * input channel 2 weight loads, PX broadcasts and 24 FMAs. MLAS's AVX512F
 * NCHWc kernel computes 4 filter blocks of 16 x 6 outputs from the same
 * broadcast-input scheme; with 8-wide blocks (the layout the rest of the
 * engine, AVX2 included, shares) two pairs and twice the pixels give the
 * same 24 accumulators.
 *
 * The weights come packed for these tiles (cnn_conv2d_nchwc.wpair): a
 * pair's 16 weights of an input channel in one aligned zmm load. Joining
 * two 8-float halves instead took an insert per pair and channel on port
 * 5, which the FMAs share (256->64 @56 1x1: 0.63 -> 0.58 ms without).
 *
 * Only the tiles are here: the portable driver (csrc/ops/nchwc_drive.c)
 * hands a unit's blocks to these kernels up to 4 at a time. The AVX-512
 * depthwise is depthwise_avx512.c.
 */
#if defined(__x86_64__)
#include <immintrin.h>

#include "nchwc_avx512.h"

#define B CNN_NCHWC
#define INLINE CNN_INLINE

/* A tile computes NB = 2 or 4 output blocks (one or two pair vectors) and
 * stores r->nb of them: 1 or 2, 3 or 4; the 1x1 tiles' NB = 1 and 3 (an odd
 * block on ymm) store NB. The blocks each pair vector stores: */
#define PAIR_COUNTS                                                         \
    const int n0 = NB == 1 ? 1 : r->nb >= 2 ? 2 : 1, n1 = NB == 3 ? 1 : (int)r->nb - 2

#define ACC_DECL                                                                        \
    __m512 a00 = _mm512_setzero_ps(), a01 = a00, a02 = a00, a03 = a00, a04 = a00, a05 = a00, \
           a06 = a00, a07 = a00, a08 = a00, a09 = a00, a010 = a00, a011 = a00;          \
    __m512 a10 = a00, a11 = a00, a12 = a00, a13 = a00, a14 = a00, a15 = a00, a16 = a00,   \
           a17 = a00, a18 = a00, a19 = a00, a110 = a00, a111 = a00

/* w0 / w1: the two pairs' weights of the input channel at WP (wpair
 * packs: a pair's 16 weights in one aligned line; the second pair 2 * wob
 * floats on) */
#define PAIR_WEIGHTS(WP)                                                    \
    const __m512 w0 = _mm512_load_ps(WP);                                   \
    const __m512 w1 = NB > 2 ? _mm512_load_ps((WP) + 2 * wob) : w0

/* v: the broadcast input of pixel P, w0/w1 the two pairs' weights */
#define FMA_PIX(P, ADDR)                                                    \
    if (PX > P) {                                                           \
        const __m512 v = _mm512_set1_ps(*(ADDR));                           \
        a0##P = _mm512_fmadd_ps(v, w0, a0##P);                              \
        if (NB > 2)                                                         \
            a1##P = _mm512_fmadd_ps(v, w1, a1##P);                          \
    }

/* One input channel CI of one tap: the pairs' weights at wp, each of the
 * tile's pixels read at xt + o[p] (the span and tile-list kernels alike) */
#define FMA_TAP(CI)                                                         \
    do {                                                                    \
        PAIR_WEIGHTS(wp + (CI) * 2 * B);                                    \
        const float *xc = xt + (CI);                                        \
        FMA_PIX(0, xc + o[0]) FMA_PIX(1, xc + o[1]) FMA_PIX(2, xc + o[2])   \
        FMA_PIX(3, xc + o[3]) FMA_PIX(4, xc + o[4]) FMA_PIX(5, xc + o[5])   \
        FMA_PIX(6, xc + o[6]) FMA_PIX(7, xc + o[7]) FMA_PIX(8, xc + o[8])   \
        FMA_PIX(9, xc + o[9]) FMA_PIX(10, xc + o[10]) FMA_PIX(11, xc + o[11]) \
    } while (0)

/* The store of a tile's PX pixels x NB output blocks from pixel OX0. The
 * epilogue copied to a local first: see CNN_TILE_STORE (AVX2). */
#define OUT_PIX(P, AT)                                                                   \
    if (PX > P) {                                                                        \
        store_pair(&ep_, a0##P, b0, y0 + AT(P), r0 ? r0 + AT(P) : NULL, yp, n0);         \
        if (NB > 2)                                                                      \
            store_pair(&ep_, a1##P, b1, y0 + 2 * yp + AT(P), r0 ? r0 + 2 * yp + AT(P) : NULL, \
                       yp, n1);                                                          \
    }
/* pixel P's offset from the tile's first: the next in its row */
#define AT_ROW(P) (P) * B
#define TILE_STORE(OX0) TILE_STORE_AT(OX0, AT_ROW)
#define TILE_STORE_AT(OX0, AT)                                                           \
    do {                                                                                 \
        const cnn_epilogue ep_ = *r->ep;                                                 \
        PAIR_COUNTS;                                                                     \
        const __m512 b0 = n0 == 2 ? _mm512_loadu_ps(r->bias)                             \
                                  : _mm512_zextps256_ps512(_mm256_loadu_ps(r->bias));    \
        const __m512 b1 = NB <= 2 ? b0                                                   \
                          : n1 == 2 ? _mm512_loadu_ps(r->bias + 2 * B)                   \
                                    : _mm512_zextps256_ps512(_mm256_loadu_ps(r->bias + 2 * B)); \
        const int64_t yp = r->yplane;                                                    \
        float *y0 = r->y + (OX0) * B;                                                    \
        const float *r0 = r->res ? r->res + (OX0) * B : NULL;                            \
        OUT_PIX(0, AT) OUT_PIX(1, AT) OUT_PIX(2, AT) OUT_PIX(3, AT) OUT_PIX(4, AT)       \
        OUT_PIX(5, AT) OUT_PIX(6, AT) OUT_PIX(7, AT) OUT_PIX(8, AT) OUT_PIX(9, AT)       \
        OUT_PIX(10, AT) OUT_PIX(11, AT)                                                  \
    } while (0)

#define ALL_PIX(BASE, STEP)                                                           \
    FMA_PIX(0, BASE + 0 * (STEP)) FMA_PIX(1, BASE + 1 * (STEP)) FMA_PIX(2, BASE + 2 * (STEP)) \
    FMA_PIX(3, BASE + 3 * (STEP)) FMA_PIX(4, BASE + 4 * (STEP)) FMA_PIX(5, BASE + 5 * (STEP)) \
    FMA_PIX(6, BASE + 6 * (STEP)) FMA_PIX(7, BASE + 7 * (STEP)) FMA_PIX(8, BASE + 8 * (STEP)) \
    FMA_PIX(9, BASE + 9 * (STEP)) FMA_PIX(10, BASE + 10 * (STEP)) FMA_PIX(11, BASE + 11 * (STEP))

/* PX output pixels from ox0 (input column ix0 for tap kx = 0) x NB output
 * blocks, taps kx in [kx0, kx1); CB input channels per block (8, or 1 for
 * an NCHW-input stem); K, S as in the AVX2 conv_tile. */
INLINE void conv_tile(const crow *r, const int NB, const int PX, const int CB, const int K,
                      const int S, int64_t ox0, int64_t ix0, int64_t kx0, int64_t kx1,
                      const char *pf, int64_t pfn)
{
    ACC_DECL;
    const int64_t kw = K ? K : r->kw, dh = K ? 1 : r->dh, dw = K ? 1 : r->dw;
    const int64_t xs = (S ? S : r->sw) * CB, taps = (K ? K * K : r->kh * r->kw);
    const int64_t wob = r->wob;
    if (K) {
        kx0 = 0;
        kx1 = K;
    }
    const int64_t per = cnn_prefetch_share(pfn, r->icb);
    for (int64_t ib = 0; ib < r->icb; ib++) {
        cnn_prefetch_slice(pf, pfn, per, ib);
        const float *xb = r->x + ib * r->xplane;
        const float *wb = r->w + ib * taps * CB * 2 * B;
        for (int64_t ky = r->ky0; ky < r->ky1; ky++) {
            const int64_t row = (r->iy0 + ky * dh) * r->xrow;
#pragma GCC unroll 3
            for (int64_t kx = kx0; kx < kx1; kx++) {
                const float *xp = xb + row + (ix0 + kx * dw) * CB;
                const float *wp = wb + (ky * kw + kx) * CB * 2 * B;
#pragma GCC unroll 8
                for (int ci = 0; ci < CB; ci++) {
                    PAIR_WEIGHTS(wp + ci * 2 * B);
                    ALL_PIX(xp + ci, xs)
                }
            }
        }
    }
    TILE_STORE(ox0);
}

/* The ymm half of a zmm accumulator, weight or broadcast (the upper lanes
 * are left undefined and never stored: store_pair's n = 1). */
#define LO(V) _mm512_castps512_ps256(V)
#define HALF(Y) _mm512_castps256_ps512(Y)

/* pw_tile's weights: a pair vector per pair, or for the odd block of NB = 1
 * or 3 its 8 weights (the lower half of its pair line) */
#define PW_WEIGHTS(WP)                                                          \
    const __m512 w0 = NB == 1 ? HALF(_mm256_load_ps(WP)) : _mm512_load_ps(WP);  \
    const __m512 w1 = NB == 4   ? _mm512_load_ps((WP) + 2 * wob)                \
                      : NB == 3 ? HALF(_mm256_load_ps((WP) + 2 * wob))          \
                                : w0

/* ACC += W x the float at ADDR, broadcast by the FMA's own load ({1to16}):
 * GCC otherwise puts it in a register with a separate vbroadcastss, an
 * extra uop per pixel that the 1x1 tiles measured slower (docs/performance.md) */
#define FMA_BCST(ACC, W, ADDR)                                                  \
    __asm__("vfmadd231ps %[x]%{1to16%}, %[w], %[a]"                            \
            : [a] "+v"(ACC)                                                     \
            : [w] "v"(W), [x] "m"(*(ADDR)))

/* FMA_PIX for NB = 1..4 (2 and 4 by FMA_BCST): the odd block's FMAs on
 * ymm, where a zmm FMA with a zero half costs a full one (Zen 4 splits a
 * zmm FMA in two ymm halves; on Xeons a ymm FMA costs what a zmm one does,
 * no more) */
#define PW_FMA_PIX(P, ADDR)                                                     \
    if (PX > P) {                                                               \
        if (NB == 1) {                                                          \
            const __m256 v = _mm256_broadcast_ss(ADDR);                         \
            a0##P = HALF(_mm256_fmadd_ps(v, LO(w0), LO(a0##P)));                \
        } else if (NB != 3) {                                                   \
            FMA_BCST(a0##P, w0, ADDR);                                          \
            if (NB == 4)                                                        \
                FMA_BCST(a1##P, w1, ADDR);                                      \
        } else {                                                                \
            const __m512 v = _mm512_set1_ps(*(ADDR));                           \
            a0##P = _mm512_fmadd_ps(v, w0, a0##P);                              \
            a1##P = HALF(_mm256_fmadd_ps(LO(v), LO(w1), LO(a1##P)));            \
        }                                                                       \
    }

/* 1x1 stride 1 over the flattened image, NB (1..4) output blocks, input
 * blocks [ib0, ib1): pixels 8 floats apart. A tile that does not start the
 * sum (first = 0) resumes from the partial sums stored at y; one that does
 * not end it (last = 0) stores its sums there raw, without the epilogue.
 * NB = 1 and 3 (a pair vector and an odd block) store r->nb = NB blocks:
 * output channel counts such as 24, 40 and 88 (3, 5 and 11 blocks) spent
 * a zmm FMA on a block of zeros. */
INLINE void pw_tile(const crow *r, const int NB, const int PX, int64_t ox0, int64_t ib0,
                    int64_t ib1, int first, int last, const char *pf, int64_t pfn)
{
    ACC_DECL;
    PAIR_COUNTS;
    const int64_t wob = r->wob, xplane = r->xplane, yp = r->yplane;
    float *const yt = r->y + ox0 * B;
    if (!first) {
#define IN_PIX(P)                                                                       \
        if (PX > P) {                                                                   \
            a0##P = load_pair(yt + P * B, yp, n0);                                      \
            if (NB > 2)                                                                 \
                a1##P = load_pair(yt + 2 * yp + P * B, yp, n1);                         \
        }
        IN_PIX(0) IN_PIX(1) IN_PIX(2) IN_PIX(3) IN_PIX(4) IN_PIX(5)
        IN_PIX(6) IN_PIX(7) IN_PIX(8) IN_PIX(9) IN_PIX(10) IN_PIX(11)
#undef IN_PIX
    }
    /* the residual is cold in a network (the block's input, written a few
     * layers before): its lines on the way while the tile computes rather
     * than missed at the store (ResNet-50's 64->256 @56: 3-5 %) */
    if (last && r->res)
        for (int b = 0; b < NB; b++)
            for (int l = 0; l < PX * B; l += 16)
                _mm_prefetch((const char *)(r->res + b * yp + ox0 * B + l), _MM_HINT_T0);
    const float *xp = r->x + ib0 * xplane + ox0 * B, *wp = r->w + ib0 * 2 * B * B;
    const int64_t per = cnn_prefetch_share(pfn, ib1 - ib0);
    for (int64_t ib = ib0; ib < ib1; ib++, xp += xplane, wp += 2 * B * B) {
        cnn_prefetch_slice(pf, pfn, per, ib - ib0);
        /* an input too large for L2 streams in from L3 across twice as
         * many planes as MLAS's 16-wide blocks, more than the hardware
         * prefetchers follow: the next tile's pixels of this block, one
         * tile ahead (256->64 @56 in ResNet-50: 0.76 -> 0.67 ms) */
        if (r->pf_next)
            for (int l = 0; l < PX * B; l += 16)
                _mm_prefetch((const char *)(xp + PX * B + l), _MM_HINT_T0);
#pragma GCC unroll 8
        for (int ci = 0; ci < B; ci++) {
            PW_WEIGHTS(wp + ci * 2 * B);
            const float *xc = xp + ci;
            PW_FMA_PIX(0, xc) PW_FMA_PIX(1, xc + B) PW_FMA_PIX(2, xc + 2 * B)
            PW_FMA_PIX(3, xc + 3 * B) PW_FMA_PIX(4, xc + 4 * B) PW_FMA_PIX(5, xc + 5 * B)
            PW_FMA_PIX(6, xc + 6 * B) PW_FMA_PIX(7, xc + 7 * B) PW_FMA_PIX(8, xc + 8 * B)
            PW_FMA_PIX(9, xc + 9 * B) PW_FMA_PIX(10, xc + 10 * B) PW_FMA_PIX(11, xc + 11 * B)
        }
    }
    if (last) {
        TILE_STORE(ox0);
        return;
    }
#define RAW_PIX(P)                                                                      \
    if (PX > P) {                                                                       \
        store_raw(a0##P, yt + P * B, yp, n0);                                           \
        if (NB > 2)                                                                     \
            store_raw(a1##P, yt + 2 * yp + P * B, yp, n1);                              \
    }
    RAW_PIX(0) RAW_PIX(1) RAW_PIX(2) RAW_PIX(3) RAW_PIX(4) RAW_PIX(5)
    RAW_PIX(6) RAW_PIX(7) RAW_PIX(8) RAW_PIX(9) RAW_PIX(10) RAW_PIX(11)
#undef RAW_PIX
}

/* 3x3 on a small plane, the output as one raster row (AVX2 span_tile), NB
 * output blocks; the next call's weights prefetched as in pw_tile (late
 * 512->512 @7x7: 9.4 MB of weights from DRAM, 3-7 % faster), as are
 * the row kinds' (the driver picks which). */
INLINE void span_tile(const crow *r, const int NB, const int PX, const int S, int64_t q0,
                      int64_t ow, const char *pf, int64_t pfn)
{
    ACC_DECL;
    int64_t o[12];
    for (int P = 0; P < 12; P++) {
        const int64_t q = q0 + (P < PX ? P : 0);
        o[P] = (q / ow) * S * r->xrow + (q % ow) * S * B;
    }
    const int64_t xrow = r->xrow, wob = r->wob;
    const int64_t per = cnn_prefetch_share(pfn, r->icb);
    for (int64_t ib = 0; ib < r->icb; ib++) {
        cnn_prefetch_slice(pf, pfn, per, ib);
        const float *xb = r->x + ib * r->xplane;
        const float *wb = r->w + ib * 9 * B * 2 * B;
        for (int ky = 0; ky < 3; ky++)
#pragma GCC unroll 3
            for (int kx = 0; kx < 3; kx++) {
                const float *xt = xb + ky * xrow + kx * B;
                const float *wp = wb + (ky * 3 + kx) * B * 2 * B;
#pragma GCC unroll 8
                for (int ci = 0; ci < B; ci++)
                    FMA_TAP(ci);
            }
    }
    TILE_STORE(q0);
}

/* CALL(m) for the tile size m in 1..12 */
#define SWITCH12(M, CALL)                                                               \
    switch (M) {                                                                        \
    case 12: CALL(12); break; case 11: CALL(11); break; case 10: CALL(10); break;       \
    case 9: CALL(9); break; case 8: CALL(8); break; case 7: CALL(7); break;             \
    case 6: CALL(6); break; case 5: CALL(5); break; case 4: CALL(4); break;             \
    case 3: CALL(3); break; case 2: CALL(2); break; default: CALL(1); break;            \
    }

/* Tiles of up to 12 pixels as equal as possible (see the AVX2 rows: 49 ->
 * 5 tiles of 9-10) over N pixels from POS, which each advances; CALL(m)
 * runs one. Each takes an equal share of the weights left to prefetch
 * (pf, pf_left) over the CALLS calls still to come, t those of this loop. */
#define EACH_TILE(N, POS, CALLS, CALL)                                             \
    for (int64_t t = ((N) + 11) / 12, left = (N); t > 0; t--) {                    \
        const int64_t m = left / t;                                                \
        const int64_t pfn = pf_left > 0 ? cnn_prefetch_share(pf_left, CALLS) : 0;  \
        SWITCH12(m, CALL)                                                          \
        POS += m;                                                                  \
        left -= m;                                                                 \
        pf += pfn;                                                                 \
        pf_left -= pfn;                                                            \
    }

/* NB output blocks. The input channels in r->ibatch-block passes over
 * every tile (ONNX Runtime's MLAS batches them by 128 the same way): a
 * pass's weights (4 blocks x 16 input blocks: 16 KiB) stay in L1 while its
 * tiles stream their inputs past them, where a tile over all the channels
 * streamed its 4 x 1 KiB per input block from L2 (256->64 @56: 64 KiB of
 * weights per 12 pixels). The next call's weights are prefetched in equal
 * shares over every tile of every pass. */
INLINE void pw_rows(const crow *r, const int NB, int64_t x0, int64_t x1)
{
    const char *pf = r->pf;
    int64_t pf_left = pf ? r->pf_bytes : 0;
    const int64_t passes = (r->icb + r->ibatch - 1) / r->ibatch;
    const int64_t tiles = (x1 - x0 + 11) / 12;
    for (int64_t k = 0; k < passes; k++) {
        const int64_t ib0 = r->icb * k / passes, ib1 = r->icb * (k + 1) / passes;
        const int first = k == 0, last = k == passes - 1;
        int64_t ox = x0;
#define PW_CALL(PX) pw_tile(r, NB, PX, ox, ib0, ib1, first, last, pf, pfn)
        EACH_TILE(x1 - x0, ox, (passes - k - 1) * tiles + t, PW_CALL)
#undef PW_CALL
    }
}

/* NB output blocks, stride S */
INLINE void span_rows(const crow *r, const int NB, const int S, int64_t x0, int64_t x1,
                      int64_t ow)
{
    int64_t q = x0;
    const char *pf = r->pf;
    int64_t pf_left = pf ? r->pf_bytes : 0;
#define SPAN_CALL(PX) span_tile(r, NB, PX, S, q, ow, pf, pfn)
    EACH_TILE(x1 - x0, q, t, SPAN_CALL)
#undef SPAN_CALL
}

static void pw_row_b1(const crow *r, int64_t x0, int64_t x1) { pw_rows(r, 1, x0, x1); }
static void pw_row_b2(const crow *r, int64_t x0, int64_t x1) { pw_rows(r, 2, x0, x1); }
static void pw_row_b3(const crow *r, int64_t x0, int64_t x1) { pw_rows(r, 3, x0, x1); }
static void pw_row_b4(const crow *r, int64_t x0, int64_t x1) { pw_rows(r, 4, x0, x1); }
#define DEFINE_SPAN_ROW(NAME, NB, S)                                               \
    static void NAME(const crow *r, int64_t x0, int64_t x1, int64_t ow)            \
    {                                                                              \
        span_rows(r, NB, S, x0, x1, ow);                                           \
    }
DEFINE_SPAN_ROW(span_row_s1_b2, 2, 1)
DEFINE_SPAN_ROW(span_row_s2_b2, 2, 2)
DEFINE_SPAN_ROW(span_row_s1_b4, 4, 1)
DEFINE_SPAN_ROW(span_row_s2_b4, 4, 2)

/* A tile of a padded small plane's tile list (cnn_ptile): span_tile with
 * each pixel's input and output offsets from the list and the taps it
 * shares with its tile's other pixels, those wholly in the padding
 * skipped (ResNet's 3x3s at 7x7: 361 of 441 taps inside the map). */
#define AT_Q(P) (int64_t)t->q[P] * B
INLINE void ptile(const crow *r, const int NB, const int PX, const cnn_ptile *t, const char *pf,
                  int64_t pfn)
{
    ACC_DECL;
    int64_t o[12];
    for (int P = 0; P < 12; P++)
        o[P] = t->xo[P < PX ? P : 0];
    const int64_t wob = r->wob, kw = r->kw, taps = r->kh * r->kw;
    const int64_t dy = r->dh * r->xrow, dx = r->dw * B;
    const int64_t ky0 = t->ky0, ky1 = t->ky1, kx0 = t->kx0, kx1 = t->kx1;
    const int64_t per = cnn_prefetch_share(pfn, r->icb);
    for (int64_t ib = 0; ib < r->icb; ib++) {
        cnn_prefetch_slice(pf, pfn, per, ib);
        const float *xb = r->x + ib * r->xplane;
        const float *wb = r->w + ib * taps * B * 2 * B;
        for (int64_t ky = ky0; ky < ky1; ky++)
            for (int64_t kx = kx0; kx < kx1; kx++) {
                const float *xt = xb + ky * dy + kx * dx;
                const float *wp = wb + (ky * kw + kx) * B * 2 * B;
#pragma GCC unroll 8
                for (int ci = 0; ci < B; ci++)
                    FMA_TAP(ci);
            }
    }
    TILE_STORE_AT(0, AT_Q);
}

/* count tiles from t, NB output blocks; the next call's weights
 * prefetched in equal shares over them */
INLINE void ptiles(const crow *r, const int NB, const cnn_ptile *t, int64_t count)
{
    const char *pf = r->pf;
    int64_t pf_left = pf ? r->pf_bytes : 0;
    for (int64_t i = 0; i < count; i++, t++) {
        const int64_t pfn = pf_left > 0 ? cnn_prefetch_share(pf_left, count - i) : 0;
#define PT_CALL(PX) ptile(r, NB, PX, t, pf, pfn)
        SWITCH12(t->n, PT_CALL)
#undef PT_CALL
        pf += pfn;
        pf_left -= pfn;
    }
}

static void tiles_b2(const crow *r, const cnn_ptile *t, int64_t count) { ptiles(r, 2, t, count); }
static void tiles_b4(const crow *r, const cnn_ptile *t, int64_t count) { ptiles(r, 4, t, count); }

/* Interior tiles of up to 12 with every tap inside the image, border
 * pixels one by one with their taps clipped; NB output blocks, CB input
 * channels per block, K and S the kernel size and stride fixed at compile
 * time (0: read from r). */
INLINE void rows(const crow *r, const int NB, const int CB, const int K, const int S, int64_t x0,
                 int64_t x1, int64_t in_lo, int64_t in_hi, int64_t pl, int64_t w)
{
    int64_t ox = x0;
    const char *pf = r->pf;
    int64_t pf_left = pf ? r->pf_bytes : 0;
    while (ox < x1) {
        const int64_t ix0 = ox * r->sw - pl;
        if (ox < in_lo || ox >= in_hi) {
            int64_t k0 = 0, k1 = r->kw;
            while (k0 < k1 && ix0 + k0 * r->dw < 0) k0++;
            while (k1 > k0 && ix0 + (k1 - 1) * r->dw >= w) k1--;
            conv_tile(r, NB, 1, CB, 0, 0, ox, ix0, k0, k1, NULL, 0);
            ox++;
            continue;
        }
        const int64_t n = (in_hi < x1 ? in_hi : x1) - ox;
#define ROW_CALL(PX) conv_tile(r, NB, PX, CB, K, S, ox, ox * r->sw - pl, 0, r->kw, pf, pfn)
        EACH_TILE(n, ox, t, ROW_CALL)
#undef ROW_CALL
    }
}

#define DEFINE_ROW(NAME, NB, CB, K, S)                                                      \
    static void NAME(const crow *r, int64_t x0, int64_t x1, int64_t in_lo, int64_t in_hi, \
                     int64_t pl, int64_t w)                                             \
    {                                                                                   \
        rows(r, NB, CB, K, S, x0, x1, in_lo, in_hi, pl, w);                             \
    }
DEFINE_ROW(row_c8_b2, 2, 8, 0, 0)
DEFINE_ROW(row_c8_k1s2_b2, 2, 8, 1, 2)
DEFINE_ROW(row_c8_s1_b2, 2, 8, 0, 1)
DEFINE_ROW(row_c8_s2_b2, 2, 8, 0, 2)
DEFINE_ROW(row_c1_b2, 2, 1, 0, 0)
DEFINE_ROW(row_c1_s2_b2, 2, 1, 0, 2)
DEFINE_ROW(row_c1_k3s2_b2, 2, 1, 3, 2)
DEFINE_ROW(row_c8_b4, 4, 8, 0, 0)
DEFINE_ROW(row_c8_k1s2_b4, 4, 8, 1, 2)
DEFINE_ROW(row_c8_s1_b4, 4, 8, 0, 1)
DEFINE_ROW(row_c8_s2_b4, 4, 8, 0, 2)
DEFINE_ROW(row_c1_b4, 4, 1, 0, 0)
DEFINE_ROW(row_c1_s2_b4, 4, 1, 0, 2)
DEFINE_ROW(row_c1_k3s2_b4, 4, 1, 3, 2)

/* Every kind and shape for 1..4 blocks: 2-block tiles store 1 or 2, 4-block
 * tiles 3 or 4 (r->nb; a wpair pack's odd last block has a zero partner).
 * The 1x1s' output channel counts in mobile networks are often not
 * multiples of 32 (24, 40, 80, 112): 3 blocks in two AVX2 calls ran at 6
 * pixels x 2 and 6 x 1. The 3x3 kinds take the kernels with only the
 * stride fixed: with the taps fixed too GCC's unrolled tap loop spilled
 * accumulators (1219 zmm stack accesses in the stride-1 row; 3x3 s1
 * 128->128 @56: 118 -> 138 GFLOP/s without). A 3x3 s2 stem (one input
 * channel per block: 9 taps unrolled, 27 registers) takes both fixed:
 * MobileNetV3's 3->16 @224 0.128 -> 0.124 ms. */
#define BLOCKS(NAME) {NAME##_b2, NAME##_b2, NAME##_b4, NAME##_b4}
const cnn_nchwc_rows cnn_nchwc_wide_rows_avx512 = {
    .row = {
        [CNN_ROW_C8] = BLOCKS(row_c8),
        [CNN_ROW_C8_K1S2] = BLOCKS(row_c8_k1s2),
        [CNN_ROW_C8_K3S1] = BLOCKS(row_c8_s1),
        [CNN_ROW_C8_K3S2] = BLOCKS(row_c8_s2),
        [CNN_ROW_C1] = BLOCKS(row_c1),
        [CNN_ROW_C1_S2] = BLOCKS(row_c1_s2),
        [CNN_ROW_C1_K3S2] = BLOCKS(row_c1_k3s2),
    },
    .pw = {pw_row_b1, pw_row_b2, pw_row_b3, pw_row_b4},
    .span = {BLOCKS(span_row_s1), BLOCKS(span_row_s2)},
    .tiles = BLOCKS(tiles),
};

#endif
