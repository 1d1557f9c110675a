#pragma GCC target("avx2,fma,avx512f,avx512dq,avx512bw,avx512vl")
/* The AVX-512 depthwise convolution of blocked (NCHW8c) tensors on planes
 * up to 14 output pixels wide (32 for 5x5 stride 1): a block pair (16
 * channels) per zmm register, so that one FMA covers both blocks, as MLAS's
 * AVX-512 depthwise kernel does with its 16-channel blocks. Wider planes,
 * and kernels other than 3x3 / 5x5 at stride 1 or 2, run the AVX2 rows
 * (nchwc_avx2.c, cnn_conv2d_nchwc_dw_act_avx2), whose ymm loads need no
 * joining and whose border pixels are few there.
 *
 * The pair's pixel is joined from its two blocks' planes as it is loaded,
 * into no window: the zero-padded window copy that interleaved the pair
 * (this file's earlier kernel, stride 1 only) was slower at 1 and 2
 * threads on the mobile families' 7x7 and 14x14 planes, and at stride 2
 * a window holds four input pixels per output pixel. On 56- and 112-wide
 * planes the joins, which share ports with the FMAs, lose to the AVX2
 * rows (docs/performance.md, 2026-12-07). */
#if defined(__x86_64__)
#include <immintrin.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "nchwc_avx512.h"

#define B CNN_NCHWC
#define INLINE CNN_INLINE

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
#pragma GCC unroll 14
    for (int P = 0; P < PX; P++) {
        __m512 v = a[P];
        if (res)
            v = _mm512_add_ps(v, load_pair(res + P * B, yplane, nb));
        store_raw(act512(ep, v), y + P * B, yplane, nb);
    }
}

/* One output row of the pair: tiles of at most DWD_MAX pixels, as even as
 * the row allows; xr the tap rows' base (row iy0, column 0). */
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


/* Which depthwise convs the pair kernel takes (see the top). */
static int dwd_fits(const cnn_conv2d_params *p)
{
    return p->kh == p->kw && (p->kh == 3 || p->kh == 5) && p->sh == p->sw &&
           (p->sw == 1 || p->sw == 2) && p->dh == 1 && p->dw == 1 &&
           p->ow <= (p->kw == 5 && p->sw == 1 ? 32 : 14);
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
} dwd_job;

/* Unit u: (image, block pair, chunk of rpu output rows). scratch: none
 * needed (NULL), kept for the drivers' unit(job, u, scratch) shape. */
static void dwd_unit(const dwd_job *jb, int64_t u, float *scratch)
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
    (void)scratch;
    __m512 wq[25];
    for (int64_t t = 0; t < taps; t++)
        wq[t] = load_pair(pk->w + (b0 * taps + t) * B, taps * B, nb);
    const __m512 bv = load_pair(pk->bias + b0 * B, B, nb);
    const float *xb = jb->x + q * h * w * B;
    const int64_t xplane = nb == 2 ? h * w * B : 0;   /* a lone block joins itself */
    for (int64_t oy = oy0; oy < oy1; oy++) {
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

/* The driver: units split statically over the threads. pool as in
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
#pragma omp parallel num_threads(threads)
    {
        float *xw = NULL;   /* no scratch: the kernel reads the input in place */
        /* nowait: the region's join is the one barrier (a second one cost
         * ~0.6 us per step at 2 threads, more where a thread is preempted) */
#pragma omp for schedule(static) nowait
        for (int64_t u = 0; u < nunits; u++)
            dwd_unit(&jb, u, xw);
    }
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

#endif
