#pragma GCC target("avx2,fma")
/* Winograd F(4x4, 3x3) on blocked (NCHW8c) input and output, AVX2/FMA
 * (algorithm: csrc/ops/winograd.h; packed layout: cnn_winograd_pack_nchwc_f32),
 * and F(2x2, 3x3) through the same driver (m = 2: 16 positions, 4x4 tiles
 * at stride 2; csrc/ops/winograd2.c packs it and holds its scalar oracle).
 *
 * In the blocked layout the 8 channels of a pixel are one vector, so the
 * transforms need no transposes: each lane carries one channel through
 * B^T d B and A^T m A. The 36 GEMMs are turned around against the plain
 * path (csrc/x86/winograd_avx2.c): M^T[xi] (tiles x K) = V^T[xi] (tiles x C)
 * U^T[xi] (C x K), so that
 *  - the transformed input V is stored [xi][tile][c]: one vector store per
 *    (xi, tile, channel block) from the input transform;
 *  - the 6x16 micro-kernel broadcasts V of 6 tiles and loads 16 output
 *    channels of U (the packed panel), and
 *  - M comes out [xi][tile][k]: the output transform reads 8 output
 *    channels of a tile as one vector and stores them as one blocked pixel.
 * This is ncnn's pack8 Winograd arrangement (convolution_3x3_pack8, ideas
 * only). Keeping Winograd blocked lets a network stay blocked end to end:
 * the plain path needed a reorder on each side of every 3x3 conv (DenseNet
 * at 2 threads spent 2.2 ms of 38 in reorders) and kept the ops around it
 * (Concat, BatchNormalization, ReLU) in NCHW.
 *
 * Work is cut in superblocks of whole tile rows whose V fits VBUDGET. Each
 * thread takes a contiguous share of a superblock's tiles, transforms just
 * those into its own V and multiplies them by all of U: no barrier, no V
 * read from another core, and the split is exact to the tile (the GEMM
 * stage computes any number of rows). On few tiles (split_k) the threads
 * split the output channels instead, each transforming all the tiles.
 */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "../ops/winograd.h"
#include "../ops/winograd_filter.h"
#include "vmath_avx2.h"
#include "winograd_avx2.h"
#include "pool.h"

#define B 8
#ifndef VBUDGET
#define VBUDGET ((int64_t)2 << 20)   /* bytes of transformed input per superblock */
#endif
#define NT 60    /* tiles per GEMM call, at most */
#define KW 48    /* output channels per GEMM call, at most (pstep 1; pstep 2: 64) */

/* Input transform of tiles [t0, t1) of the tile row whose first input
 * row is iy0, channel block plane xb (H, W, 8): V[xi] row t - t0 at v +
 * xi*vstride + (t - t0)*ldv. rbuf: 6 * (4*tw + 2) vectors. */
static void input_row(const cnn_conv2d_params *p, const float *xb, int64_t iy0, int64_t t0,
                      int64_t t1, float *v, int64_t ldv, int64_t vstride, float *rbuf)
{
    const int64_t H = p->h, W = p->w, ncols = 4 * (t1 - t0) + 2;
    const float *rows[6];
    for (int r = 0; r < 6; r++)
        rows[r] = iy0 + r >= 0 && iy0 + r < H ? xb + (iy0 + r) * W * B : NULL;
    /* vertical pass once per input column (neighbouring tiles overlap by 2) */
    for (int64_t j = 0; j < ncols; j++) {
        const int64_t ix = 4 * t0 + j - p->pl;
        const int in = ix >= 0 && ix < W;
        __m256 d[6], r[6];
        for (int q = 0; q < 6; q++)
            d[q] = in && rows[q] ? _mm256_loadu_ps(rows[q] + ix * B) : _mm256_setzero_ps();
        bt6v(d[0], d[1], d[2], d[3], d[4], d[5], r);
        for (int q = 0; q < 6; q++)
            _mm256_store_ps(rbuf + (q * ncols + j) * B, r[q]);
    }
    for (int64_t t = 0; t < t1 - t0; t++)
        for (int i = 0; i < 6; i++) {
            const float *s = rbuf + (i * ncols + 4 * t) * B;
            __m256 r[6];
            bt6v(_mm256_load_ps(s), _mm256_load_ps(s + B), _mm256_load_ps(s + 2 * B),
                 _mm256_load_ps(s + 3 * B), _mm256_load_ps(s + 4 * B), _mm256_load_ps(s + 5 * B),
                 r);
            float *dst = v + i * 6 * vstride + t * ldv;
            for (int j = 0; j < 6; j++)
                _mm256_storeu_ps(dst + j * vstride, r[j]);
        }
}

/* F(2x2, 3x3) (csrc/ops/winograd.h): 1-D B^T on 4 vectors. */
static inline __attribute__((always_inline)) void bt4v(__m256 d0, __m256 d1, __m256 d2,
                                                       __m256 d3, __m256 r[4])
{
    r[0] = _mm256_sub_ps(d0, d2);
    r[1] = _mm256_add_ps(d1, d2);
    r[2] = _mm256_sub_ps(d2, d1);
    r[3] = _mm256_sub_ps(d1, d3);
}

/* input_row for F(2x2, 3x3): 4x4 tiles at stride 2, V[xi] for 16 xi.
 * rbuf: 4 * (2*tw + 2) vectors. */
static void input_row2(const cnn_conv2d_params *p, const float *xb, int64_t iy0, int64_t t0,
                       int64_t t1, float *v, int64_t ldv, int64_t vstride, float *rbuf)
{
    const int64_t H = p->h, W = p->w, ncols = 2 * (t1 - t0) + 2;
    const float *rows[4];
    for (int r = 0; r < 4; r++)
        rows[r] = iy0 + r >= 0 && iy0 + r < H ? xb + (iy0 + r) * W * B : NULL;
    for (int64_t j = 0; j < ncols; j++) {
        const int64_t ix = 2 * t0 + j - p->pl;
        const int in = ix >= 0 && ix < W;
        __m256 d[4], r[4];
        for (int q = 0; q < 4; q++)
            d[q] = in && rows[q] ? _mm256_loadu_ps(rows[q] + ix * B) : _mm256_setzero_ps();
        bt4v(d[0], d[1], d[2], d[3], r);
        for (int q = 0; q < 4; q++)
            _mm256_store_ps(rbuf + (q * ncols + j) * B, r[q]);
    }
    for (int64_t t = 0; t < t1 - t0; t++)
        for (int i = 0; i < 4; i++) {
            const float *s = rbuf + (i * ncols + 2 * t) * B;
            __m256 r[4];
            bt4v(_mm256_load_ps(s), _mm256_load_ps(s + B), _mm256_load_ps(s + 2 * B),
                 _mm256_load_ps(s + 3 * B), r);
            float *dst = v + i * 4 * vstride + t * ldv;
            for (int j = 0; j < 4; j++)
                _mm256_storeu_ps(dst + j * vstride, r[j]);
        }
}

/* M (MR <= 6 tiles x PW outputs) = V (MR rows of ldv, kc channels) * U
 * panel (kc x PW). Named accumulators: GCC keeps an array in memory. */
static inline __attribute__((always_inline)) void micro(int64_t kc, const float *restrict v,
                                                        int64_t ldv, const float *restrict u,
                                                        const int MR, const int PW,
                                                        float *restrict m, int64_t ldm)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    const float *v0 = v, *v1 = v + ldv, *v2 = v + 2 * ldv, *v3 = v + 3 * ldv;
    const float *v4 = v + (MR > 4 ? 4 : 0) * ldv, *v5 = v + (MR > 5 ? 5 : 0) * ldv;
#pragma GCC unroll 4
    for (int64_t k = 0; k < kc; k++) {
        const __m256 b0 = _mm256_load_ps(u);
        const __m256 b1 = PW == 16 ? _mm256_load_ps(u + 8) : b0;
        __m256 a;
#define CNN_ROW(R)                                                   \
        if (MR > R) {                                                \
            a = _mm256_broadcast_ss(v##R + k);                       \
            c##R##0 = _mm256_fmadd_ps(a, b0, c##R##0);               \
            if (PW == 16)                                            \
                c##R##1 = _mm256_fmadd_ps(a, b1, c##R##1);           \
        }
        CNN_ROW(0) CNN_ROW(1) CNN_ROW(2) CNN_ROW(3) CNN_ROW(4) CNN_ROW(5)
#undef CNN_ROW
        u += PW;
    }
#define CNN_ST(R)                                                    \
    if (MR > R) {                                                    \
        _mm256_storeu_ps(m + R * ldm, c##R##0);                      \
        if (PW == 16)                                                \
            _mm256_storeu_ps(m + R * ldm + 8, c##R##1);              \
    }
    CNN_ST(0) CNN_ST(1) CNN_ST(2) CNN_ST(3) CNN_ST(4) CNN_ST(5)
#undef CNN_ST
}

/* bias + residual + activation on nv outputs o of one row at y + off. */
static inline __attribute__((always_inline)) void store_row(const cnn_conv2d_params *p,
                                                            const __m256 *o, int64_t nv,
                                                            __m256 bv, float *yb,
                                                            const float *rb, int64_t off)
{
    const int act = p->ep.act;
    for (int q = 0; q < nv; q++) {
        __m256 v = _mm256_add_ps(o[q], bv);
        if (rb)
            v = _mm256_add_ps(v, _mm256_loadu_ps(rb + off + q * B));
        if (act == CNN_ACT_RELU)
            v = cnn_v_relu(v);
        else if (act == CNN_ACT_CLIP)
            v = cnn_v_clip(v, CNN_V(p->ep.alpha), CNN_V(p->ep.beta));
        _mm256_storeu_ps(yb + off + q * B, v);
    }
    if (act != CNN_ACT_NONE && act != CNN_ACT_RELU && act != CNN_ACT_CLIP)
        cnn_act_inplace(&p->ep, yb + off, nv * B);
}

/* Output transform of one tile, one block of 8 output channels: mp points
 * at M[0][tile][block], consecutive xi mstride apart; yb/rb at the block's
 * output (residual) plane, tile origin (oy0, ox0). */
static void output_tile(const cnn_conv2d_params *p, const float *mp, int64_t mstride,
                        __m256 bv, float *yb, const float *rb, int64_t oy0, int64_t ox0)
{
    const int64_t OH = p->oh, OW = p->ow;
    __m256 s[4][6];
    for (int j = 0; j < 6; j++) {   /* columns: s = A^T m */
        __m256 o[4];
        at6v(_mm256_loadu_ps(mp + (0 * 6 + j) * mstride), _mm256_loadu_ps(mp + (1 * 6 + j) * mstride),
             _mm256_loadu_ps(mp + (2 * 6 + j) * mstride), _mm256_loadu_ps(mp + (3 * 6 + j) * mstride),
             _mm256_loadu_ps(mp + (4 * 6 + j) * mstride), _mm256_loadu_ps(mp + (5 * 6 + j) * mstride),
             o);
        for (int a = 0; a < 4; a++)
            s[a][j] = o[a];
    }
    const int64_t nv = OW - ox0 < 4 ? OW - ox0 : 4;
    for (int a = 0; a < 4 && oy0 + a < OH; a++) {
        __m256 o[4];
        at6v(s[a][0], s[a][1], s[a][2], s[a][3], s[a][4], s[a][5], o);
        store_row(p, o, nv, bv, yb, rb, ((oy0 + a) * OW + ox0) * B);
    }
}

/* output_tile for F(2x2, 3x3): A^T = [1 1 1 0; 0 1 -1 -1], 16 xi. */
static void output_tile2(const cnn_conv2d_params *p, const float *mp, int64_t mstride,
                         __m256 bv, float *yb, const float *rb, int64_t oy0, int64_t ox0)
{
    const int64_t OH = p->oh, OW = p->ow;
    __m256 s[2][4];
    for (int j = 0; j < 4; j++) {   /* columns: s = A^T m */
        const __m256 m0 = _mm256_loadu_ps(mp + (0 * 4 + j) * mstride);
        const __m256 m1 = _mm256_loadu_ps(mp + (1 * 4 + j) * mstride);
        const __m256 m2 = _mm256_loadu_ps(mp + (2 * 4 + j) * mstride);
        const __m256 m3 = _mm256_loadu_ps(mp + (3 * 4 + j) * mstride);
        s[0][j] = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);
        s[1][j] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
    }
    const int64_t nv = OW - ox0 < 2 ? OW - ox0 : 2;
    for (int a = 0; a < 2 && oy0 + a < OH; a++) {
        __m256 o[2];
        o[0] = _mm256_add_ps(_mm256_add_ps(s[a][0], s[a][1]), s[a][2]);
        o[1] = _mm256_sub_ps(_mm256_sub_ps(s[a][1], s[a][2]), s[a][3]);
        store_row(p, o, nv, bv, yb, rb, ((oy0 + a) * OW + ox0) * B);
    }
}

/* Rows [l0, l1) of one panel: 6 at a time, a last 7 to 9 as two groups
 * of at least 3 (a row group of under 4 leaves FMA latency exposed), none
 * computed past l1 (a thread's share of 49 tiles, 25: 6, 6, 6, 3, 4). */
#define CNN_MR_CASE(R, PW) case R: micro(cp, vx + l * ldv, ldv, u, R, PW, ml, ldm); break;
#define PANEL_ROWS(PW)                                                                  \
    for (int64_t l = l0; l < l1;) {                                                     \
        float *ml = mx + (l - l0) * ldm + k - k0;                                       \
        const int64_t r = l1 - l;                                                       \
        const int mr = r >= 10 || r == 6 ? 6 : r > 6 ? (int)r - 4 : (int)r;             \
        switch (mr) {                                                                   \
        CNN_MR_CASE(1, PW) CNN_MR_CASE(2, PW) CNN_MR_CASE(3, PW)                        \
        CNN_MR_CASE(4, PW) CNN_MR_CASE(5, PW) default: CNN_MR_CASE(6, PW)               \
        }                                                                               \
        l += mr;                                                                        \
    }

/* cnn_wino_gemm_fn with the 6x16 micro-kernel (8 wide for an odd last block). */
static void gemm_avx2(int nxi, const float *V, int64_t vstride, int64_t ldv, const float *U,
                      int64_t kp, int64_t cp, float *M, int64_t mstride, int64_t ldm, int64_t l0,
                      int64_t l1, int64_t k0, int64_t k1)
{
    for (int xi = 0; xi < nxi; xi++) {
        const float *vx = V + xi * vstride;
        const float *ux = U + xi * kp * cp;
        float *mx = M + xi * mstride;
        for (int64_t k = k0; k < k1; k += 16) {
            const float *u = ux + k * cp;
            if (kp - k >= 16)
                PANEL_ROWS(16)
            else
                PANEL_ROWS(8)
        }
    }
}

cnn_status cnn_winograd_nchwc_run_avx2(const cnn_conv2d_params *p, const float *packed,
                                       const float *x, const float *bias,
                                       const float *residual, float *y, int threads)
{
    return cnn_winograd_nchwc_drive(p, packed, x, bias, residual, y, threads, gemm_avx2, 6, 1, 4);
}

cnn_status cnn_winograd2_nchwc_run_avx2(const cnn_conv2d_params *p, const float *packed,
                                        const float *x, const float *bias,
                                        const float *residual, float *y, int threads)
{
    return cnn_winograd_nchwc_drive(p, packed, x, bias, residual, y, threads, gemm_avx2, 6, 1, 2);
}

/* One call's conv, buffers and derived sizes, shared by its threads. */
typedef struct {
    const cnn_conv2d_params *p;
    const float *packed, *x, *bias, *residual;
    float *y;
    cnn_wino_gemm_fn gemm;
    int m, nxi, align;
    int64_t cbs, kbs, th, tw, cp, kp, ldv, vstride, ldm, mstride, nt, kw;
} wino_run;

/* Input transform of tiles [a, b) of the superblock whose first (image,
 * tile row) pair is row0, into V rows 0 .. b - a. */
static void transform_tiles(const wino_run *r, int64_t row0, int64_t a, int64_t b, float *V,
                            float *rbuf)
{
    const cnn_conv2d_params *p = r->p;
    const int64_t tw = r->tw, plane = p->h * p->w * B;
    for (int64_t l = a; l < b;) {
        const int64_t t0 = l % tw, t1 = tw - t0 < b - l ? tw : t0 + b - l;
        const int64_t img = (row0 + l / tw) / r->th, ty = (row0 + l / tw) % r->th;
        const float *ximg = r->x + img * r->cbs * plane;
        for (int64_t cb = 0; cb < r->cbs; cb++)
            (r->m == 4 ? input_row : input_row2)(p, ximg + cb * plane, r->m * ty - p->pt, t0, t1,
                                                 V + (l - a) * r->ldv + cb * B, r->ldv,
                                                 r->vstride, rbuf);
        l += t1 - t0;
    }
}

/* Start of chunk i of n over len tiles: at a multiple of align (whole
 * micro-kernel row groups) but the end. */
static int64_t chunk_at(int64_t len, int64_t n, int64_t i, int64_t align)
{
    const int64_t at = (len * i / n + align / 2) / align * align;
    return i >= n || at > len ? len : at;
}

/* GEMMs and output transform of tiles [a, b) (V rows 0 .. b - a) for
 * output channels [k0, k1): chunks of at most nt tiles times ranges of at
 * most kw channels, each through M. */
static void gemm_tiles(const wino_run *r, int64_t row0, const float *V, int64_t a, int64_t b,
                       int64_t k0, int64_t k1, float *M)
{
    const cnn_conv2d_params *p = r->p;
    const int64_t nch = (b - a + r->nt - 1) / r->nt, oplane = p->oh * p->ow * B;
    for (int64_t ch = 0; ch < nch; ch++) {
        const int64_t l0 = chunk_at(b - a, nch, ch, r->align);
        const int64_t l1 = chunk_at(b - a, nch, ch + 1, r->align);
        for (int64_t kk = k0; kk < k1; kk += r->kw) {
            const int64_t ke = k1 - kk < r->kw ? k1 : kk + r->kw;
            r->gemm(r->nxi, V, r->vstride, r->ldv, r->packed, r->kp, r->cp, M, r->mstride,
                    r->ldm, l0, l1, kk, ke);
            for (int64_t l = l0; l < l1; l++) {
                const int64_t t = a + l, row = row0 + t / r->tw, tx = t % r->tw;
                const int64_t img = row / r->th, ty = row % r->th;
                for (int64_t ob = kk / B; ob < ke / B; ob++) {
                    const int64_t at = (img * r->kbs + ob) * oplane;
                    (r->m == 4 ? output_tile : output_tile2)(
                        p, M + (l - l0) * r->ldm + ob * B - kk, r->mstride,
                        _mm256_load_ps(r->bias + ob * B), r->y + at,
                        r->residual ? r->residual + at : NULL, r->m * ty, r->m * tx);
                }
            }
        }
    }
}

/* Whether the threads split the superblock's output channels (each
 * transforming all ntiles tiles) rather than its tiles: where each would
 * get fewer than 2 * align tiles, each then streams a share of U instead
 * of all of it (measured: docs/performance.md, 2026-12-06 18:10). Needs a
 * panel of 16 outputs per thread. */
static int split_k(int64_t ntiles, int team, int64_t n16, int align)
{
    return team > 1 && n16 >= team && ntiles < 2 * align * team;
}

typedef struct wino_job {
    const wino_run *r;
    float *ws;
    int64_t per, nsb, rows_sb, nrows, n16;
    int shares, align;
} wino_job;

/* Unit u: share w = u / nsb (of `shares`) of superblock u % nsb, in the
 * slot's V, M and row buffer (a slot runs its share of every superblock). */
static void wino_unit(void *ctx, int64_t u, int slot)
{
    const wino_job *jb = (const wino_job *)ctx;
    const wino_run *r = jb->r;
    const int64_t sb = u % jb->nsb, w = u / jb->nsb, kp = r->kp, n16 = jb->n16;
    const int threads = jb->shares;
    /* 32-byte aligned: per is a multiple of 8 floats */
    float *V = jb->ws + jb->per * slot, *M = V + r->nxi * r->vstride, *rbuf = M + r->nxi * r->mstride;
    const int64_t row0 = sb * jb->rows_sb;
    const int64_t ntiles = (jb->nrows - row0 < jb->rows_sb ? jb->nrows - row0 : jb->rows_sb) * r->tw;
    int64_t a = 0, b = ntiles, k0 = 0, k1 = kp;
    if (split_k(ntiles, threads, n16, jb->align)) {
        k0 = n16 * w / threads * 16;
        k1 = n16 * (w + 1) / threads * 16;
        k1 = k1 < kp ? k1 : kp;
    } else {
        a = ntiles * w / threads;
        b = ntiles * (w + 1) / threads;
    }
    if (a >= b || k0 >= k1)
        return;
    transform_tiles(r, row0, a, b, V, rbuf);
    gemm_tiles(r, row0, V, a, b, k0, k1, M);
}

cnn_status cnn_winograd_nchwc_drive(const cnn_conv2d_params *p, const float *packed,
                                    const float *x, const float *bias, const float *residual,
                                    float *y, int threads, cnn_wino_gemm_fn gemm, int align,
                                    int pstep, int m)
{
    wino_run r = {.p = p, .packed = packed, .x = x, .bias = bias, .residual = residual, .y = y,
                  .gemm = gemm, .m = m, .nxi = (m + 2) * (m + 2), .align = align};
    const int nxi = r.nxi;   /* 36 for F(4x4, 3x3), 16 for F(2x2, 3x3) */
    r.cp = cnn_wino_nchwc_pad(p->c);
    r.kp = cnn_wino_nchwc_pad(p->k);
    r.cbs = r.cp / B;
    r.kbs = r.kp / B;
    r.th = (p->oh + m - 1) / m;
    r.tw = (p->ow + m - 1) / m;
    const int64_t cp = r.cp, kp = r.kp, tw = r.tw;
    const int64_t nrows = p->n * r.th;   /* (image, tile row) pairs */
    int64_t rows_sb = VBUDGET / (nxi * 4 * cp * tw);
    if (rows_sb * tw < 2 * NT)         /* enough tiles to amortise streaming U */
        rows_sb = (2 * NT + tw - 1) / tw;
    if (rows_sb > nrows)
        rows_sb = nrows;
    const int64_t nsb = (nrows + rows_sb - 1) / rows_sb;
    const int64_t n16 = (kp + 15) / 16;   /* the K split's unit: a panel of 16 */
    /* each thread transforms the tiles it multiplies into its own V: no
     * barrier, and its V stays in its core's caches; V rows for the larger
     * of a full and the last superblock's share */
    int64_t vrows = 1;
    for (int last = 0; last < 2; last++) {
        const int64_t tiles = (last ? nrows - (nsb - 1) * rows_sb : rows_sb) * tw;
        const int64_t v = split_k(tiles, threads, n16, align) ? tiles
                                                                : (tiles + threads - 1) / threads;
        vrows = v > vrows ? v : vrows;
    }
    /* 4 KiB-multiple strides alias in L1 */
    r.ldv = cp % 512 == 0 ? cp + 16 : cp;
    r.kw = (pstep == 2 ? 64 : KW);
    r.nt = NT < vrows ? NT : vrows;
    r.ldm = r.kw + 8;
    r.mstride = (r.nt + align) * r.ldm;   /* chunk_at moves a chunk's ends by align / 2 */
    const int64_t rbsize = (m + 2) * (m * tw + 2) * B;
    int64_t per, all;
    if (!cnn_mul_ok(vrows, r.ldv, &r.vstride) || !cnn_mul_ok(r.vstride, nxi, &per) ||
        __builtin_add_overflow(per, nxi * r.mstride + rbsize, &per) ||
        !cnn_mul_ok(per, threads, &all))
        return CNN_ERR_SHAPE;
    float *ws = cnn_alloc_floats(all);
    if (!ws)
        return CNN_ERR_OOM;

    /* shares are cut for `threads`; fewer workers run several, each within
     * the V sized for one */
    wino_job jb = {&r, ws, per, nsb, rows_sb, nrows, n16, threads, align};
    cnn_pool_for(threads, nsb * threads, NULL, cnn_threads_steal(), wino_unit, &jb);
    free(ws);
    return CNN_OK;
}

/* U of one panel (csrc/ops/winograd_filter.h), this file's ISA. */
CNN_WINO_NO_CONTRACT void cnn_wino_filter_avx2(const float *w, int64_t C, int64_t nl,
                                               int64_t width, float *dst, int64_t xs)
{
    cnn_wino_filter_panel(w, C, nl, width, dst, xs);
}

#endif
