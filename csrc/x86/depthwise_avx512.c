#pragma GCC target("avx2,fma,avx512f,avx512dq,avx512bw,avx512vl")
/* The AVX-512 depthwise convolution of blocked (NCHW8c) tensors, 3x3 and
 * 5x5 at stride 1 or 2 (the mobile families' kernels): a block pair (16
 * channels) per zmm register, so that one FMA covers both blocks, as MLAS's
 * AVX-512 depthwise kernel does with its 16-channel blocks. Other kernels,
 * strides and dilations run the AVX2 rows (nchwc_avx2.c,
 * cnn_conv2d_nchwc_dw_act_avx2).
 *
 * The pair's pixel is joined from its two blocks' planes as it is loaded,
 * into no window: the zero-padded window copy that interleaved the pair
 * (this file's earlier kernel, stride 1 on small planes only) was slower
 * at 1 and 2 threads, and at stride 2 a window holds four input pixels
 * per output pixel. The joins share ports with the FMAs, so a tile makes
 * two output rows (each joined pixel feeds both) and stores through an
 * epilogue decided once per tile; so made it is no slower than the AVX2
 * rows on 56- and 112-wide planes either (docs/performance.md, 2026-12-07). */
#if defined(__x86_64__)
#include <immintrin.h>

#include "nchwc_avx512.h"
#include "pool.h"

#define B CNN_NCHWC
#define INLINE CNN_INLINE

/* A tile's PX accumulators (bias in) stored at y (+ res): the epilogue is
 * copied to a local and switched on once per tile, not per vector (a
 * float store may alias ep's alpha and beta); ReLU, clip and hard-swish,
 * the mobile families' activations, get loops of their own (act512's
 * formulas). */
INLINE void dwd_store(const cnn_epilogue *ep, const __m512 *a, const int PX, const float *res,
                      float *y, int64_t yplane, const int nb)
{
    const cnn_epilogue e = *ep;
    const __m512 zero = _mm512_setzero_ps();
#define DWD_STORE_LOOP(EXPR)                                                 \
    do {                                                                     \
        _Pragma("GCC unroll 14") for (int P = 0; P < PX; P++) {              \
            __m512 v = a[P];                                                 \
            if (res)                                                         \
                v = _mm512_add_ps(v, load_pair(res + P * B, yplane, nb));   \
            store_raw((EXPR), y + P * B, yplane, nb);                        \
        }                                                                    \
    } while (0)
    switch (e.act) {
    case CNN_ACT_NONE: DWD_STORE_LOOP(v); break;
    case CNN_ACT_RELU: DWD_STORE_LOOP(_mm512_max_ps(zero, v)); break;
    case CNN_ACT_HARDSWISH: {
        const __m512 three = _mm512_set1_ps(3.f), six = _mm512_set1_ps(6.f);
        const __m512 sixth = _mm512_set1_ps(1.f / 6.f);
        DWD_STORE_LOOP(_mm512_mul_ps(
            _mm512_mul_ps(v, _mm512_min_ps(six, _mm512_max_ps(zero, _mm512_add_ps(v, three)))), sixth));
        break;
    }
    case CNN_ACT_CLIP: {
        const __m512 lo = _mm512_set1_ps(e.alpha), hi = _mm512_set1_ps(e.beta);
        DWD_STORE_LOOP(_mm512_mask_mov_ps(
            _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, hi, _CMP_GT_OQ), hi),
            _mm512_cmp_ps_mask(v, lo, _CMP_LT_OQ), lo));
        break;
    }
    default: DWD_STORE_LOOP(act512(&e, v)); break;
    }
#undef DWD_STORE_LOOP
}

/* Without a window: each input pixel of a tap row is joined from its two
 * blocks' planes (xk and xk + xplane) as it is loaded, and feeds every
 * accumulator of the tile it reaches, at stride 1 or 2. Columns outside
 * [0, w) are the padding's zeros: their FMAs are skipped (edge tiles only).
 * Rows outside the map are skipped by the caller's [ky0, ky1). */
#define DWD_MAX 14

INLINE void dwd_tile(const float *xr, int64_t xrow, int64_t xplane, int64_t ix0, int64_t w,
                     int64_t ky0, int64_t ky1, const __m512 *wq, const int PX, const int K,
                     const int S, int edge, __m512 bv, const cnn_epilogue *ep, const float *res,
                     float *y, int64_t yplane, const int nb)
{
    __m512 a[DWD_MAX];
#pragma GCC unroll 14
    for (int P = 0; P < PX; P++)
        a[P] = bv;
    for (int64_t ky = ky0; ky < ky1; ky++) {
        const float *xk = xr + ky * xrow + ix0 * B;
        __m512 wv[5];
#pragma GCC unroll 5
        for (int kx = 0; kx < K; kx++)
            wv[kx] = wq[ky * K + kx];
#pragma GCC unroll 32
        for (int j = 0; j < (PX - 1) * S + K; j++) {
            if (edge && (ix0 + j < 0 || ix0 + j >= w))
                continue;
            const __m512 xv = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(xk + j * B)),
                                                 _mm256_loadu_ps(xk + xplane + j * B), 1);
#pragma GCC unroll 5
            for (int kx = 0; kx < K; kx++) {
                const int d = j - kx;
                if (d >= 0 && d % S == 0 && d / S < PX)
                    a[d / S] = _mm512_fmadd_ps(xv, wv[kx], a[d / S]);
            }
        }
    }
    dwd_store(ep, a, PX, res, y, yplane, nb);
}

/* One output row of the pair (a unit's odd last row): tiles
 * of at most DWD_MAX pixels, as even as the row allows; xr the tap rows'
 * base (row iy0, column 0). */
#define DEFINE_DWD_ROW(NAME, K, S)                                                           \
    static void NAME(const float *xr, int64_t xrow, int64_t xplane, int64_t pl, int64_t w,   \
                     int64_t ky0, int64_t ky1, const __m512 *wq, int64_t ow, __m512 bv,      \
                     const cnn_epilogue *ep, const float *res, float *y, int64_t yplane,     \
                     int nb)                                                                 \
    {                                                                                        \
        enum { KS = K, SS = S };                                                             \
        int64_t ox = 0;                                                                      \
        for (int64_t t = (ow + DWD_MAX - 1) / DWD_MAX, left = ow; t > 0; t--) {              \
            const int64_t m = left / t, ix0 = ox * S - pl;                                   \
            const int edge = ix0 < 0 || ix0 + (m - 1) * S + K > w;                           \
            const float *rt = res ? res + ox * B : NULL;                                     \
            float *yt = y + ox * B;                                                          \
            switch (m) {                                                                     \
            DWD_CASE(14) DWD_CASE(13) DWD_CASE(12) DWD_CASE(11) DWD_CASE(10) DWD_CASE(9)     \
            DWD_CASE(8) DWD_CASE(7) DWD_CASE(6) DWD_CASE(5) DWD_CASE(4) DWD_CASE(3)          \
            DWD_CASE(2)                                                                      \
            default: dwd_tile(xr, xrow, xplane, ix0, w, ky0, ky1, wq, 1, KS, SS, edge, bv, ep, \
                              rt, yt, yplane, nb); break;                                    \
            }                                                                                \
            ox += m;                                                                         \
            left -= m;                                                                       \
        }                                                                                    \
    }
#define DWD_CASE(PX)                                                                          \
    case PX: dwd_tile(xr, xrow, xplane, ix0, w, ky0, ky1, wq, PX, KS, SS, edge, bv, ep, rt, yt, \
                      yplane, nb); break;
DEFINE_DWD_ROW(dwd_row_k3s1, 3, 1)
DEFINE_DWD_ROW(dwd_row_k3s2, 3, 2)
DEFINE_DWD_ROW(dwd_row_k5s1, 5, 1)
DEFINE_DWD_ROW(dwd_row_k5s2, 5, 2)
#undef DWD_CASE
#undef DEFINE_DWD_ROW

/* Two output rows at a time: each joined input pixel feeds both rows'
 * accumulators, so a tile joins K + S input rows for two output rows
 * instead of 2K. dwd_taps: one input row's taps, for row 0 (weights w0,
 * if R0) and row 1 (w1, if R1); every accumulator still sums its taps in
 * (ky, kx) order, as the AVX2 rows do. */
#define DWD2_MAX 8

INLINE void dwd_taps(const float *xk, int64_t xplane, int64_t ix0, int64_t w, int edge,
                     const __m512 *w0, const __m512 *w1, __m512 *a0, __m512 *a1, const int PX,
                     const int K, const int S, const int R0, const int R1)
{
    __m512 wv0[5], wv1[5];
#pragma GCC unroll 5
    for (int kx = 0; kx < K; kx++) {
        if (R0)
            wv0[kx] = w0[kx];
        if (R1)
            wv1[kx] = w1[kx];
    }
#pragma GCC unroll 20
    for (int j = 0; j < (PX - 1) * S + K; j++) {
        if (edge && (ix0 + j < 0 || ix0 + j >= w))
            continue;
        const __m512 xv = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(xk + j * B)),
                                             _mm256_loadu_ps(xk + xplane + j * B), 1);
#pragma GCC unroll 5
        for (int kx = 0; kx < K; kx++) {
            const int d = j - kx;
            if (d >= 0 && d % S == 0 && d / S < PX) {
                if (R0)
                    a0[d / S] = _mm512_fmadd_ps(xv, wv0[kx], a0[d / S]);
                if (R1)
                    a1[d / S] = _mm512_fmadd_ps(xv, wv1[kx], a1[d / S]);
            }
        }
    }
}

/* PX pixels of output rows oy and oy + 1 (yrow floats apart); xr: input
 * row oy * S - pt, of which rows [t0, t1) (of K + S) are inside the map. */
INLINE void dwd_tile2(const float *xr, int64_t xrow, int64_t xplane, int64_t ix0, int64_t w,
                      int64_t t0, int64_t t1, const __m512 *wq, const int PX, const int K,
                      const int S, int edge, __m512 bv, const cnn_epilogue *ep, const float *res, float *y,
                      int64_t yrow, int64_t yplane, const int nb)
{
    __m512 a0[DWD2_MAX], a1[DWD2_MAX];
#pragma GCC unroll 8
    for (int P = 0; P < PX; P++)
        a0[P] = a1[P] = bv;
    for (int64_t t = t0; t < t1; t++) {
        const float *xk = xr + t * xrow + ix0 * B;
        if (t < S)
            dwd_taps(xk, xplane, ix0, w, edge, wq + t * K, wq, a0, a1, PX, K, S, 1, 0);
        else if (t >= K)
            dwd_taps(xk, xplane, ix0, w, edge, wq, wq + (t - S) * K, a0, a1, PX, K, S, 0, 1);
        else
            dwd_taps(xk, xplane, ix0, w, edge, wq + t * K, wq + (t - S) * K, a0, a1, PX, K, S, 1, 1);
    }
    dwd_store(ep, a0, PX, res, y, yplane, nb);
    dwd_store(ep, a1, PX, res ? res + yrow : NULL, y + yrow, yplane, nb);
}

/* dwd_row for output rows oy and oy + 1 (tiles of DWD2_MAX:
 * 2 x 8 accumulators and 2K weights in the 32 registers). */
#define DEFINE_DWD_ROW2(NAME, K, S)                                                           \
    static void NAME(const float *xr, int64_t xrow, int64_t xplane, int64_t pl, int64_t w,   \
                     int64_t t0, int64_t t1, const __m512 *wq, int64_t ow, __m512 bv,        \
                     const cnn_epilogue *ep, const float *res, float *y, int64_t yrow,       \
                     int64_t yplane, int nb)                                                 \
    {                                                                                        \
        enum { KS = K, SS = S };                                                             \
        int64_t ox = 0;                                                                      \
        for (int64_t t = (ow + DWD2_MAX - 1) / DWD2_MAX, left = ow; t > 0; t--) {            \
            const int64_t m = left / t, ix0 = ox * S - pl;                                   \
            const int edge = ix0 < 0 || ix0 + (m - 1) * S + K > w;                           \
            const float *rt = res ? res + ox * B : NULL;                                     \
            float *yt = y + ox * B;                                                          \
            switch (m) {                                                                     \
            DWD2_CASE(8) DWD2_CASE(7) DWD2_CASE(6) DWD2_CASE(5) DWD2_CASE(4) DWD2_CASE(3)    \
            DWD2_CASE(2)                                                                     \
            default: dwd_tile2(xr, xrow, xplane, ix0, w, t0, t1, wq, 1, KS, SS, edge, bv, ep, \
                               rt, yt, yrow, yplane, nb); break;                             \
            }                                                                                \
            ox += m;                                                                         \
            left -= m;                                                                       \
        }                                                                                    \
    }
#define DWD2_CASE(PX)                                                                         \
    case PX: dwd_tile2(xr, xrow, xplane, ix0, w, t0, t1, wq, PX, KS, SS, edge, bv, ep, rt, yt, \
                       yrow, yplane, nb); break;
DEFINE_DWD_ROW2(dwd_rows2_k3s1, 3, 1)
DEFINE_DWD_ROW2(dwd_rows2_k3s2, 3, 2)
DEFINE_DWD_ROW2(dwd_rows2_k5s1, 5, 1)
DEFINE_DWD_ROW2(dwd_rows2_k5s2, 5, 2)
#undef DWD2_CASE
#undef DEFINE_DWD_ROW2

typedef void (*dwd_rows2_fn)(const float *, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                             const __m512 *, int64_t, __m512, const cnn_epilogue *, const float *,
                             float *, int64_t, int64_t, int);

/* Which depthwise convs the pair kernel takes. */
static int dwd_fits(const cnn_conv2d_params *p)
{
    return p->kh == p->kw && (p->kh == 3 || p->kh == 5) && p->sh == p->sw &&
           (p->sw == 1 || p->sw == 2) && p->dh == 1 && p->dw == 1;
}

typedef void (*dwd_row_fn)(const float *, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                           const __m512 *, int64_t, __m512, const cnn_epilogue *, const float *,
                           float *, int64_t, int);

/* What every unit of a dwd_run shares, read-only. */
typedef struct dwd_job {
    const cnn_conv2d_nchwc *pk;
    const float *x, *residual;
    float *y, *partial;
    int64_t rpu, chunks, pairs;
    dwd_row_fn row;
    dwd_rows2_fn rows2;   /* two rows at a time */
} dwd_job;

/* Unit u: (image, block pair, chunk of rpu output rows); no scratch: the
 * kernel reads the input in place. */
static void dwd_unit(const dwd_job *jb, int64_t u)
{
    const cnn_conv2d_nchwc *pk = jb->pk;
    const cnn_conv2d_params *p = &pk->p;
    const int64_t h = p->h, w = p->w, oh = p->oh, ow = p->ow, cbs = pk->ocb, k = p->kh;
    const int64_t s = p->sh, taps = k * k, rpu = jb->rpu, chunks = jb->chunks;
    const int64_t plane = oh * ow * B, chunk = u % chunks, img = u / chunks / jb->pairs;
    const int64_t b0 = u / chunks % jb->pairs * 2;
    const int nb = b0 + 1 < cbs ? 2 : 1;
    const int64_t q = img * cbs + b0;   /* the pair's first block plane */
    const int64_t oy0 = chunk * rpu, oy1 = oy0 + rpu < oh ? oy0 + rpu : oh;
    __m512 wq[25];
    for (int64_t t = 0; t < taps; t++)
        wq[t] = load_pair(pk->w + (b0 * taps + t) * B, taps * B, nb);
    const __m512 bv = load_pair(pk->bias + b0 * B, B, nb);
    const float *xb = jb->x + q * h * w * B;
    const int64_t xplane = nb == 2 ? h * w * B : 0;   /* a lone block joins itself */
    int64_t oy = oy0;
    for (; oy + 1 < oy1; oy += 2) {
        const int64_t iy0 = oy * s - p->pt;
        const int64_t t0 = iy0 < 0 ? -iy0 : 0, t1 = h - iy0 < k + s ? h - iy0 : k + s;
        const int64_t at = q * plane + oy * ow * B;
        jb->rows2(xb + iy0 * w * B, w * B, xplane, p->pl, w, t0, t1, wq, ow, bv, &p->ep,
                  jb->residual ? jb->residual + at : NULL, jb->y + at, ow * B, plane, nb);
    }
    for (; oy < oy1; oy++) {
        const int64_t iy0 = oy * s - p->pt;
        int64_t ky0 = 0, ky1 = k;
        while (ky0 < ky1 && iy0 + ky0 < 0) ky0++;
        while (ky1 > ky0 && iy0 + ky1 - 1 >= h) ky1--;
        const int64_t at = q * plane + oy * ow * B;
        jb->row(xb + iy0 * w * B, w * B, xplane, p->pl, w, ky0, ky1, wq, ow, bv, &p->ep,
                 jb->residual ? jb->residual + at : NULL, jb->y + at, plane, nb);
    }
    for (int b = 0; b < nb; b++) {
        float *yr = jb->y + (q + b) * plane + oy0 * ow * B;
        if (!cnn_act_in_tile(p->ep.act))
            cnn_act_row_avx512(&p->ep, yr, yr, (oy1 - oy0) * ow * B);
        if (jb->partial)
            _mm256_storeu_ps(jb->partial + ((q + b) * chunks + chunk) * B,
                             cnn_nchwc_lane_sums(yr, (oy1 - oy0) * ow));
    }
}

static void dwd_pool_unit(void *ctx, int64_t u, int slot)
{
    (void)slot;
    dwd_unit((const dwd_job *)ctx, u);
}

/* The driver: units shared over the pool's threads. pool as in
 * nchwc_avx2.c's dw_run. */
static cnn_status dwd_run(const cnn_conv2d_nchwc *pk, int64_t n, const float *x,
                          const float *residual, float *y, float *pool, int threads)
{
    const cnn_conv2d_params *p = &pk->p;
    const int64_t oh = p->oh, ow = p->ow, cbs = pk->ocb, k = p->kh;
    if ((double)n * cbs * oh * ow * k * k * B < 65536.0)   /* see cnn_nchwc_conv_drive */
        threads = 1;
    dwd_job jb = {.pk = pk, .x = x, .residual = residual, .y = y, .pairs = (cbs + 1) / 2};
    /* rows per unit: 64+ output pixels, so that an exp-based activation
     * runs over spans long enough for its vector loop */
    jb.rpu = (64 + ow - 1) / ow;
    jb.rpu += jb.rpu & 1;   /* an even count: row pairs */
    jb.rows2 = k == 3 ? (p->sw == 1 ? dwd_rows2_k3s1 : dwd_rows2_k3s2)
                      : (p->sw == 1 ? dwd_rows2_k5s1 : dwd_rows2_k5s2);
    if (jb.rpu > oh)
        jb.rpu = oh;
    jb.chunks = (oh + jb.rpu - 1) / jb.rpu;
    const int64_t nunits = n * jb.pairs * jb.chunks;
    if (threads > nunits)
        threads = (int)nunits;
    if (pool && !(jb.partial = cnn_alloc_floats(n * cbs * jb.chunks * B)))
        return CNN_ERR_OOM;
    jb.row = k == 3 ? (p->sw == 1 ? dwd_row_k3s1 : dwd_row_k3s2)
                    : (p->sw == 1 ? dwd_row_k5s1 : dwd_row_k5s2);
    cnn_pool_for(threads, nunits, NULL, cnn_threads_steal(), dwd_pool_unit, &jb);
    if (jb.partial) {
        cnn_nchwc_pool_means(jb.partial, n * cbs, jb.chunks, oh * ow, pool);
        free(jb.partial);
    }
    return CNN_OK;
}

cnn_status cnn_conv2d_nchwc_dw_avx512(const cnn_conv2d_nchwc *pk, int64_t n, const float *x,
                                      const float *residual, float *y, float *pool, int threads)
{
    return dwd_fits(&pk->p) ? dwd_run(pk, n, x, residual, y, pool, threads)
                            : cnn_conv2d_nchwc_dw_act_avx2(pk, n, x, residual, y, pool, threads,
                                                           cnn_act_row_avx512);
}

/* The streamed inverted-residual block's depthwise (nchwc_block.c): rows
 * [oy0, oy1) of a pair from its window, as a unit's rows above. */
void cnn_nchwc_dw_rows_avx512(const cnn_conv2d_nchwc *pk, int64_t blk, int nb, const float *xb,
                              int64_t xplane, int64_t r0, int64_t oy0, int64_t oy1, float *y,
                              int64_t yplane, float *sums)
{
    const cnn_conv2d_params *p = &pk->p;
    if (!dwd_fits(p)) {
        for (int b = 0; b < nb; b++)
            cnn_nchwc_dw_rows_avx2(pk, blk + b, xb + b * xplane, r0, oy0, oy1, y + b * yplane,
                                   sums ? sums + b * B : NULL);
        return;
    }
    const int64_t h = p->h, w = p->w, ow = p->ow, k = p->kh, s = p->sh, taps = k * k;
    __m512 wq[25];
    for (int64_t t = 0; t < taps; t++)
        wq[t] = load_pair(pk->w + (blk * taps + t) * B, taps * B, nb);
    const __m512 bv = load_pair(pk->bias + blk * B, B, nb);
    const dwd_row_fn row = k == 3 ? (s == 1 ? dwd_row_k3s1 : dwd_row_k3s2)
                                  : (s == 1 ? dwd_row_k5s1 : dwd_row_k5s2);
    const dwd_rows2_fn rows2 = k == 3 ? (s == 1 ? dwd_rows2_k3s1 : dwd_rows2_k3s2)
                                      : (s == 1 ? dwd_rows2_k5s1 : dwd_rows2_k5s2);
    const int64_t xp = nb == 2 ? xplane : 0;
    int64_t oy = oy0;
    for (; oy + 1 < oy1; oy += 2) {
        const int64_t iy0 = oy * s - p->pt;
        const int64_t t0 = iy0 < 0 ? -iy0 : 0, t1 = h - iy0 < k + s ? h - iy0 : k + s;
        rows2(xb + (iy0 - r0) * w * B, w * B, xp, p->pl, w, t0, t1, wq, ow, bv, &p->ep, NULL,
              y + (oy - oy0) * ow * B, ow * B, yplane, nb);
    }
    for (; oy < oy1; oy++) {
        const int64_t iy0 = oy * s - p->pt;
        int64_t ky0 = 0, ky1 = k;
        while (ky0 < ky1 && iy0 + ky0 < 0) ky0++;
        while (ky1 > ky0 && iy0 + ky1 - 1 >= h) ky1--;
        row(xb + (iy0 - r0) * w * B, w * B, xp, p->pl, w, ky0, ky1, wq, ow, bv, &p->ep, NULL,
            y + (oy - oy0) * ow * B, yplane, nb);
    }
    for (int b = 0; b < nb; b++) {
        float *yr = y + b * yplane;
        if (!cnn_act_in_tile(p->ep.act))
            cnn_act_row_avx512(&p->ep, yr, yr, (oy1 - oy0) * ow * B);
        if (sums)   /* the squeeze's sums, from rows still in L1 */
            _mm256_storeu_ps(sums + b * B, _mm256_add_ps(_mm256_loadu_ps(sums + b * B),
                                                         cnn_nchwc_lane_sums(yr, (oy1 - oy0) * ow)));
    }
}

#endif
