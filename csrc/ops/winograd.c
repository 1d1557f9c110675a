/* Winograd F(4x4, 3x3): eligibility, filter packing, the driver and the
 * portable scalar path (the same algorithm as csrc/x86/winograd_avx2.c, tile
 * by tile, for machines without AVX2 and as the tests' second opinion).
 * Matrices after Lavin & Gray (2016), points 0, +-1, +-2, infinity:
 *   B^T = [4  0 -5  0 1 0]   G = [ 1/4     0     0]   A^T = [1 1  1 1  1 0]
 *         [0 -4 -4  1 1 0]       [-1/6  -1/6  -1/6]         [0 1 -1 2 -2 0]
 *         [0  4 -4 -1 1 0]       [-1/6   1/6  -1/6]         [0 1  1 4  4 0]
 *         [0 -2 -1  2 1 0]       [1/24  1/12   1/6]         [0 1 -1 8 -8 1]
 *         [0  2 -1 -2 1 0]       [1/24 -1/12   1/6]
 *         [0  4  0 -5 0 1]       [   0     0     1]
 * The filter transform runs in double precision (it is done once), so U
 * carries a single float rounding; the input/output transforms use the
 * factored forms of ncnn's winograd43 (shared sums, no multiplies by 1).
 */
#include <string.h>

#include "../core/platform.h"
#include "winograd.h"
#include "winograd_filter.h"
#include "../core/pool.h"

#define TB 16  /* tiles per block in the scalar path */

#define G cnn_wino_G   /* csrc/ops/winograd_filter.h */

/* 3x3/s1/d1/g1 and consistent sizes (as conv2d's check). */
static cnn_status wino_check(const cnn_conv2d_params *p)
{
    if (!p)
        return CNN_ERR_ARG;
    if (!cnn_act_valid(&p->ep))
        return CNN_ERR_ARG;
    if (p->kh != 3 || p->kw != 3 || p->sh != 1 || p->sw != 1 || p->dh != 1 || p->dw != 1 ||
        p->groups != 1)
        return CNN_ERR_UNSUPPORTED;
    if (p->n < 1 || p->c < 1 || p->h < 1 || p->w < 1 || p->k < 1 || p->pt < 0 ||
        p->pl < 0 || p->pb < 0 || p->pr < 0)
        return CNN_ERR_SHAPE;
    int64_t ph, pw, t;
    if (__builtin_add_overflow(p->h, p->pt, &ph) || __builtin_add_overflow(ph, p->pb, &ph) ||
        __builtin_add_overflow(p->w, p->pl, &pw) || __builtin_add_overflow(pw, p->pr, &pw))
        return CNN_ERR_SHAPE;
    if (ph < 3 || pw < 3 || p->oh != ph - 2 || p->ow != pw - 2)
        return CNN_ERR_SHAPE;
    /* column/row arithmetic of the AVX2 transforms runs in 32-bit lanes */
    if (pw > ((int64_t)1 << 30) || ph > ((int64_t)1 << 30))
        return CNN_ERR_SHAPE;
    if (!cnn_mul_ok(p->n, p->c, &t) || !cnn_mul_ok(t, p->h, &t) || !cnn_mul_ok(t, p->w, &t) ||
        !cnn_mul_ok(p->n, p->k, &t) || !cnn_mul_ok(t, p->oh + 3, &t) ||
        !cnn_mul_ok(t, p->ow + 3, &t) || !cnn_mul_ok(cnn_wino_kpad(p->k), p->c, &t) ||
        !cnn_mul_ok(t, 36, &t))
        return CNN_ERR_SHAPE;
    return CNN_OK;
}

int cnn_winograd_eligible(const cnn_conv2d_params *p)
{
    /* measured against im2col + packed GEMM: only where that path exists */
    if (!p || !cnn_plat()->conv2d_gemm)
        return 0;
    if (p->kh != 3 || p->kw != 3 || p->sh != 1 || p->sw != 1 || p->dh != 1 || p->dw != 1 ||
        p->groups != 1)
        return 0;
    /* Measured on this 2-core Zen box, 1 thread, batch 1 (times vs the
     * im2col + packed GEMM path; benchmarks/bench_winograd.py):
     *   64->64 @56 3.5x, 128->128 @28 3.1x, 256->256 @14 2.6x,
     *   512->512 @14 2.3x, 1024->1024 @14 2.3x, 16->16 @56 2.5x,
     *   32->32 @8 1.25x, 64->128 @6 1.14x, 256->256 @7 1.35x,
     *   but 512->512 @8 or @7 0.9x: with 4 tiles per image the GEMMs stream
     *   U (36/9 = 4x the raw weights, 38 MB) once per 4 tiles.
     * So: at least 8 channels each way, outputs of at least 6x6 (a 4x4 tile
     * at least half used), and either 16+ tiles in the batch or a
     * transformed filter that stays cache resident (<= 16 MiB). */
    if (p->c < 8 || p->k < 8)
        return 0;
    if (p->oh < 6 || p->ow < 6)
        return 0;
    const double tiles = (double)p->n * (double)((p->oh + 3) / 4) * (double)((p->ow + 3) / 4);
    const double ubytes = 36.0 * (double)cnn_wino_kpad(p->k) * (double)p->c * 4.0;
    if (tiles < 16 && ubytes > 16.0 * 1024 * 1024)
        return 0;
    return 1;
}

/* U = G g G^T of one 3x3 filter g, in double, rounded once: u[6*row + col]. */
static void filter_tile(const float *g, float u[36])
{
    double gt[6][3];
    for (int i = 0; i < 6; i++)       /* G g */
        for (int j = 0; j < 3; j++)
            gt[i][j] = G[i][0] * g[0 * 3 + j] + G[i][1] * g[1 * 3 + j] + G[i][2] * g[2 * 3 + j];
    for (int i = 0; i < 6; i++)       /* (G g) G^T */
        for (int j = 0; j < 6; j++)
            u[i * 6 + j] = (float)(gt[i][0] * G[j][0] + gt[i][1] * G[j][1] + gt[i][2] * G[j][2]);
}

/* The scalar oracle of cnn_wino_filter_panel: filter_tile lane by lane. */
void cnn_wino_filter_ref(const float *w, int64_t C, int64_t nl, int64_t width, float *dst,
                         int64_t xs)
{
    for (int64_t c = 0; c < C; c++)
        for (int64_t l = 0; l < width; l++) {
            float t[36] = {0};
            if (l < nl)
                filter_tile(w + (l * C + c) * 9, t);
            for (int xi = 0; xi < 36; xi++)
                dst[xi * xs + c * width + l] = t[xi];
        }
}

/* What both packings check and allocate: a 3x3/s1/d1/g1 conv, and *u of
 * 36 * rows * cols floats (*count of them), not zeroed. */
static cnn_status alloc_u(const cnn_conv2d_params *p, const float *w, float **packed,
                          int64_t rows, int64_t cols, float **u, int64_t *count)
{
    const cnn_status st = cnn_wino_args(p, w, packed);
    if (st != CNN_OK)
        return st;
    if (!cnn_mul_ok(rows, cols, count) || !cnn_mul_ok(*count, 36, count))
        return CNN_ERR_SHAPE;
    *u = cnn_alloc_packed(*count);
    return *u ? CNN_OK : CNN_ERR_OOM;
}

/* Panels of MR outputs write every float of u: lanes past K as zeros. */
cnn_status cnn_winograd_pack_f32(const cnn_conv2d_params *p, const float *w, float **packed,
                                 size_t *packed_floats)
{
    const int64_t K = p ? p->k : 0, C = p ? p->c : 0, kp = cnn_wino_kpad(K);
    const int64_t kb6 = kp / CNN_WINO_MR;
    int64_t count;
    float *u;
    cnn_status st = alloc_u(p, w, packed, kp, C, &u, &count);
    if (st != CNN_OK)
        return st;
    const cnn_wino_filter_fn f = cnn_plat()->winograd_filter;
    for (int64_t kb = 0; kb < kb6; kb++) {
        const int64_t k0 = kb * CNN_WINO_MR, nl = K - k0 < CNN_WINO_MR ? K - k0 : CNN_WINO_MR;
        f(w + k0 * C * 9, C, nl, CNN_WINO_MR, u + kb * C * CNN_WINO_MR, kb6 * C * CNN_WINO_MR);
    }
    *packed = u;
    if (packed_floats)
        *packed_floats = (size_t)count;
    return CNN_OK;
}

/* Panels of 16 outputs (8 for an odd last block), [c][lane] inside; the
 * panel writes its lanes past K as zeros, the rows of channels past C are
 * zeroed here. */
cnn_status cnn_winograd_pack_nchwc_f32(const cnn_conv2d_params *p, const float *w,
                                       float **packed)
{
    if (packed)
        *packed = NULL;
    const int64_t K = p ? p->k : 0, C = p ? p->c : 0;
    const int64_t kp = cnn_wino_nchwc_pad(K), cp = cnn_wino_nchwc_pad(C);
    int64_t count;
    float *u;
    cnn_status st = alloc_u(p, w, packed, kp, cp, &u, &count);
    if (st != CNN_OK)
        return st;
    const cnn_wino_filter_fn f = cnn_plat()->winograd_filter;
    for (int64_t p0 = 0; p0 < kp; p0 += 16) {
        const int64_t pw = kp - p0 < 16 ? kp - p0 : 16;
        const int64_t nl = K - p0 < pw ? K - p0 : pw;
        float *dst = u + p0 * cp;
        f(w + p0 * C * 9, C, nl, pw, dst, kp * cp);
        if (cp > C)
            for (int xi = 0; xi < 36; xi++)
                memset(dst + xi * kp * cp + C * pw, 0, (size_t)((cp - C) * pw) * sizeof(float));
    }
    *packed = u;
    return CNN_OK;
}

/* 1-D B^T d on a stride-s 6-vector (factored as ncnn's winograd43). */
static inline void bt6(const float *d, int64_t s, float *r, int64_t rs)
{
    float d0 = d[0], d1 = d[s], d2 = d[2 * s], d3 = d[3 * s], d4 = d[4 * s], d5 = d[5 * s];
    float a = d4 - 4.f * d2, b = d3 - 4.f * d1, e = d4 - d2, f = 2.f * (d3 - d1);
    r[0] = 4.f * d0 - 5.f * d2 + d4;
    r[rs] = a + b;
    r[2 * rs] = a - b;
    r[3 * rs] = e + f;
    r[4 * rs] = e - f;
    r[5 * rs] = 4.f * d1 - 5.f * d3 + d5;
}

/* 1-D A^T m on a stride-s 6-vector -> 4 outputs. */
static inline void at6(const float *m, int64_t s, float *o, int64_t os)
{
    float a = m[s] + m[2 * s], b = m[s] - m[2 * s];
    float c = m[3 * s] + m[4 * s], d = m[3 * s] - m[4 * s];
    o[0] = m[0] + a + c;
    o[os] = b + 2.f * d;
    o[2 * os] = a + 4.f * c;
    o[3 * os] = b + 8.f * d + m[5 * s];
}

typedef struct wino_job {
    const cnn_conv2d_params *p;
    const float *packed, *x, *bias, *residual;
    float *y, *ws;
    int64_t per, th, tw, kb6, ntiles;
} wino_job;

/* Block blk of TB tiles, in the slot's V and M. */
static void wino_unit(void *ctx, int64_t blk, int slot)
{
    const wino_job *jb = (const wino_job *)ctx;
    const cnn_conv2d_params *p = jb->p;
    const float *packed = jb->packed, *x = jb->x, *bias = jb->bias, *residual = jb->residual;
    float *y = jb->y;
    const int64_t C = p->c, K = p->k, H = p->h, W = p->w, OH = p->oh, OW = p->ow;
    const int64_t th = jb->th, tw = jb->tw, kb6 = jb->kb6, ntiles = jb->ntiles;
    float *V = jb->ws + jb->per * slot;
    float *M = V + 36 * C * TB;
    const int64_t t0 = blk * TB, nt = ntiles - t0 < TB ? ntiles - t0 : TB;
    for (int64_t t = 0; t < nt; t++) {
        const int64_t g = t0 + t, img = g / (th * tw), ty = g / tw % th, tx = g % tw;
        const int64_t iy0 = 4 * ty - p->pt, ix0 = 4 * tx - p->pl;
        for (int64_t c = 0; c < C; c++) {
            const float *xp = x + (img * C + c) * H * W;
            float d[36], r[36], v[36];
            for (int i = 0; i < 6; i++)
                for (int j = 0; j < 6; j++) {
                    int64_t iy = iy0 + i, ix = ix0 + j;
                    d[i * 6 + j] =
                        iy >= 0 && iy < H && ix >= 0 && ix < W ? xp[iy * W + ix] : 0.f;
                }
            for (int j = 0; j < 6; j++)  /* columns: r = B^T d */
                bt6(d + j, 6, r + j, 6);
            for (int i = 0; i < 6; i++)  /* rows: v = r B */
                bt6(r + i * 6, 1, v + i * 6, 1);
            for (int xi = 0; xi < 36; xi++)
                V[(xi * C + c) * TB + t] = v[xi];
        }
    }
    for (int xi = 0; xi < 36; xi++) {
        for (int64_t k = 0; k < K; k++) {
            const float *u = packed + (xi * kb6 + k / CNN_WINO_MR) * C * CNN_WINO_MR +
                             k % CNN_WINO_MR;
            float *m = M + (xi * K + k) * TB;
            for (int64_t t = 0; t < nt; t++)
                m[t] = 0.f;
            for (int64_t c = 0; c < C; c++) {
                const float uv = u[c * CNN_WINO_MR], *vv = V + (xi * C + c) * TB;
                for (int64_t t = 0; t < nt; t++)
                    m[t] += uv * vv[t];
            }
        }
    }
    for (int64_t t = 0; t < nt; t++) {
        const int64_t g = t0 + t, img = g / (th * tw), ty = g / tw % th, tx = g % tw;
        for (int64_t k = 0; k < K; k++) {
            float m[36], s[24], o[16];
            for (int xi = 0; xi < 36; xi++)
                m[xi] = M[(xi * K + k) * TB + t];
            for (int j = 0; j < 6; j++)  /* columns: s = A^T m (4x6) */
                at6(m + j, 6, s + j, 6);
            for (int i = 0; i < 4; i++)  /* rows: o = s A (4x4) */
                at6(s + i * 6, 1, o + i * 4, 1);
            const float b = bias ? bias[k] : 0.f;
            const int64_t plane = (img * K + k) * OH * OW;
            for (int i = 0; i < 4 && 4 * ty + i < OH; i++)
                for (int j = 0; j < 4 && 4 * tx + j < OW; j++) {
                    const int64_t at = plane + (4 * ty + i) * OW + 4 * tx + j;
                    float val = o[i * 4 + j] + b;
                    if (residual)
                        val += residual[at];
                    y[at] = cnn_act_scalar(&p->ep, val);
                }
        }
    }
}

/* Scalar path: blocks of TB tiles (flattened over images and tile rows);
 * per block V (36, C, TB) and M (36, K, TB) live in a per-thread workspace. */
cnn_status cnn_winograd_run_f32_ref(const cnn_conv2d_params *p, const float *packed,
                                    const float *x, const float *bias,
                                    const float *residual, float *y, int threads)
{
    const int64_t C = p->c, K = p->k, OH = p->oh, OW = p->ow;
    const int64_t th = (OH + 3) / 4, tw = (OW + 3) / 4, kb6 = cnn_wino_kpad(K) / CNN_WINO_MR;
    const int64_t ntiles = p->n * th * tw, nblocks = (ntiles + TB - 1) / TB;
    const int64_t per = 36 * (C + K) * TB;
    if (threads > nblocks)
        threads = (int)nblocks;
    float *ws = cnn_alloc_floats(per * threads);
    if (!ws)
        return CNN_ERR_OOM;
    wino_job jb = {p, packed, x, bias, residual, y, ws, per, th, tw, kb6, ntiles};
    cnn_pool_for(threads, nblocks, NULL, cnn_threads_steal(), wino_unit, &jb);
    free(ws);
    return CNN_OK;
}

cnn_status cnn_winograd_run_f32(const cnn_conv2d_params *p, const float *packed,
                                const float *x, const float *bias, const float *residual,
                                float *y, int threads)
{
    cnn_status st = wino_check(p);
    if (st != CNN_OK)
        return st;
    if (!packed || !x || !y)
        return CNN_ERR_ARG;
    if (threads < 1)
        threads = 1;
    return cnn_plat()->winograd(p, packed, x, bias, residual, y, threads);
}
