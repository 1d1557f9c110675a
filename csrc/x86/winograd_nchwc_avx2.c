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
 * Work is cut as in the plain path: superblocks of whole tile rows whose V
 * fits VBUDGET; per superblock an input transform over (tile row, channel
 * block) and then GEMM + output transform over (tile chunk, output-channel
 * range), in one OpenMP region.
 */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "../ops/winograd.h"
#include "../ops/winograd_filter.h"
#include "vmath_avx2.h"
#include "winograd_avx2.h"

#define B 8
#ifndef VBUDGET
#define VBUDGET ((int64_t)2 << 20)   /* bytes of transformed input per superblock */
#endif
#define NT 60    /* tiles per GEMM task (a multiple of every align: 6, 12) */
#define KW 48    /* output channels per GEMM task, about (pstep 1; pstep 2: 64) */

/* Input transform of channel block plane xb (H, W, 8) for the tile row
 * whose first input row is iy0: V[xi] row t (t < tw) at v + xi*vstride +
 * t*ldv. rbuf: 6 * (4*tw + 2) vectors. */
static void input_row(const cnn_conv2d_params *p, const float *xb, int64_t iy0, int64_t tw,
                      float *v, int64_t ldv, int64_t vstride, float *rbuf)
{
    const int64_t H = p->h, W = p->w, ncols = 4 * tw + 2;
    const float *rows[6];
    for (int r = 0; r < 6; r++)
        rows[r] = iy0 + r >= 0 && iy0 + r < H ? xb + (iy0 + r) * W * B : NULL;
    /* vertical pass once per input column (neighbouring tiles overlap by 2) */
    for (int64_t j = 0; j < ncols; j++) {
        const int64_t ix = j - p->pl;
        const int in = ix >= 0 && ix < W;
        __m256 d[6], r[6];
        for (int q = 0; q < 6; q++)
            d[q] = in && rows[q] ? _mm256_loadu_ps(rows[q] + ix * B) : _mm256_setzero_ps();
        bt6v(d[0], d[1], d[2], d[3], d[4], d[5], r);
        for (int q = 0; q < 6; q++)
            _mm256_store_ps(rbuf + (q * ncols + j) * B, r[q]);
    }
    for (int64_t t = 0; t < tw; t++)
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
static void input_row2(const cnn_conv2d_params *p, const float *xb, int64_t iy0, int64_t tw,
                       float *v, int64_t ldv, int64_t vstride, float *rbuf)
{
    const int64_t H = p->h, W = p->w, ncols = 2 * tw + 2;
    const float *rows[4];
    for (int r = 0; r < 4; r++)
        rows[r] = iy0 + r >= 0 && iy0 + r < H ? xb + (iy0 + r) * W * B : NULL;
    for (int64_t j = 0; j < ncols; j++) {
        const int64_t ix = j - p->pl;
        const int in = ix >= 0 && ix < W;
        __m256 d[4], r[4];
        for (int q = 0; q < 4; q++)
            d[q] = in && rows[q] ? _mm256_loadu_ps(rows[q] + ix * B) : _mm256_setzero_ps();
        bt4v(d[0], d[1], d[2], d[3], r);
        for (int q = 0; q < 4; q++)
            _mm256_store_ps(rbuf + (q * ncols + j) * B, r[q]);
    }
    for (int64_t t = 0; t < tw; t++)
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

/* M (MR = 6 or 4 tiles x PW outputs) = V (MR rows of ldv, kc channels) * U
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

static int64_t split_at(int64_t total, int64_t parts, int64_t i, int64_t align)
{
    if (i >= parts)
        return total;
    const int64_t at = (total * i / parts + align / 2) / align * align;
    return at < total ? at : total;
}

/* Rows [l0, l1) of one panel: 6 at a time, a last group of up to 4 as 4
 * (a 7x7 plane's 16 F(2x2) tiles: 6 + 6 + 4, not 18 rows). */
#define PANEL_ROWS(PW)                                                                  \
    for (int64_t l = l0; l < l1; l += 6) {                                              \
        float *ml = mx + (l - l0) * ldm + k - k0;                                       \
        if (l1 - l > 4)                                                                 \
            micro(cp, vx + l * ldv, ldv, u, 6, PW, ml, ldm);                            \
        else                                                                            \
            micro(cp, vx + l * ldv, ldv, u, 4, PW, ml, ldm);                            \
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

cnn_status cnn_winograd_nchwc_drive(const cnn_conv2d_params *p, const float *packed,
                                    const float *x, const float *bias, const float *residual,
                                    float *y, int threads, cnn_wino_gemm_fn gemm, int align,
                                    int pstep, int m)
{
    const int nxi = (m + 2) * (m + 2);   /* 36 for F(4x4, 3x3), 16 for F(2x2, 3x3) */
    const int64_t H = p->h, W = p->w, OH = p->oh, OW = p->ow;
    const int64_t cp = cnn_wino_nchwc_pad(p->c), kp = cnn_wino_nchwc_pad(p->k);
    const int64_t cbs = cp / B, kbs = kp / B;
    const int64_t th = (OH + m - 1) / m, tw = (OW + m - 1) / m;
    const int64_t nrows = p->n * th;   /* (image, tile row) pairs */
    int64_t rows_sb = VBUDGET / (nxi * 4 * cp * tw);
    if (rows_sb * tw < 2 * NT)         /* enough tiles to amortise streaming U */
        rows_sb = (2 * NT + tw - 1) / tw;
    if (rows_sb > nrows)
        rows_sb = nrows;
    const int64_t nsb = (nrows + rows_sb - 1) / rows_sb;
    const int64_t tiles_max = rows_sb * tw;
    /* V rows: whole groups of align tiles (the micro-kernel reads up to
     * align - 1 rows past the last tile: zeroed past tiles_max, finite
     * values of an earlier superblock below it; their results are never
     * stored); 4 KiB-multiple strides alias in L1 */
    const int64_t ldv = cp % 512 == 0 ? cp + 16 : cp;
    const int64_t vrows = (tiles_max + align - 1) / align * align;
    /* GEMM tasks: tile chunks x output-channel ranges (16s) */
    const int64_t npanels = (kp + 16 * pstep - 1) / (16 * pstep);   /* of pstep x 16 */
    int64_t nt = NT;
    int64_t nchunk_max = (tiles_max + nt - 1) / nt;
    const int64_t kw = pstep == 2 ? 64 : KW;
    int64_t nkr = (kp + kw - 1) / kw;
    while ((nchunk_max * nkr) % threads && nkr < npanels && nchunk_max * nkr < 4 * threads)
        nkr++;
    /* too few output channels to feed the threads (DenseNet's 128->32):
     * smaller tile chunks */
    if (nchunk_max * nkr < threads) {
        const int64_t want = (threads + nkr - 1) / nkr;
        nt = ((tiles_max + want - 1) / want + align - 1) / align * align;
        nchunk_max = (tiles_max + nt - 1) / nt;
    }
    const int64_t kwmax = ((npanels + nkr - 1) / nkr) * 16 * pstep;
    const int64_t ldm = kwmax + 8;
    const int64_t ntmax = nt < vrows ? nt : vrows;
    /* a task's chunk holds up to nt + align tiles (split points round to
     * the nearest align, which balances the groups the micro-kernel
     * computes), and its last group writes up to align - 1 rows past the
     * chunk */
    const int64_t mstride = (ntmax + 2 * align) * ldm;
    const int64_t rbsize = (m + 2) * (m * tw + 2) * B;
    const int64_t per = nxi * mstride + rbsize;
    /* where the threads split output channels of the same tiles, each
     * transforms the whole input into its own V: the duplicated transform
     * costs less than GEMMs reading half of V from the other core and
     * every run's V writes invalidating its copies (128->128 @28x28, 2
     * threads: 0.42 -> 0.39 ms; 96->128 @28x28: 0.32 -> 0.27) */
    const int priv = threads > 1 && nchunk_max < threads && nchunk_max * nkr >= threads;
    int64_t vsize, wsize, vall;
    if (!cnn_mul_ok(vrows, ldv, &vsize) || !cnn_mul_ok(vsize, nxi, &vsize) ||
        !cnn_mul_ok(vsize, priv ? threads : 1, &vall) ||
        !cnn_mul_ok(per, threads, &wsize) || __builtin_add_overflow(wsize, vall, &wsize))
        return CNN_ERR_SHAPE;
    float *ws = cnn_alloc_floats(wsize);
    if (!ws)
        return CNN_ERR_OOM;
    const int64_t vstride = vrows * ldv;
    for (int64_t v = 0; v < vall; v += vsize)
        for (int xi = 0; xi < nxi && vrows > tiles_max; xi++)
            memset(ws + v + xi * vstride + tiles_max * ldv, 0,
                   (size_t)((vrows - tiles_max) * ldv) * sizeof(float));

#pragma omp parallel num_threads(threads)
    {
#ifdef _OPENMP
        const int tid = omp_get_thread_num(), team = omp_get_num_threads();
#else
        const int tid = 0, team = 1;
#endif
        float *V = ws + (priv ? vsize * tid : 0);
        float *M = ws + vall + per * tid;
        float *rbuf = M + nxi * mstride;   /* 64-byte aligned: per, mstride multiples of 8 */
        for (int64_t sb = 0; sb < nsb; sb++) {
            const int64_t row0 = sb * rows_sb;
            const int64_t rows = nrows - row0 < rows_sb ? nrows - row0 : rows_sb;
            const int64_t ntiles = rows * tw;
            /* 1. input transform; tile-row major, so that with the static
             * split a thread transforms the rows its GEMM tasks read. A
             * private V is transformed whole by its thread. */
            const int64_t nq = rows * cbs;
            const int64_t q0 = priv ? 0 : nq * tid / team;
            const int64_t q1 = priv ? nq : nq * (tid + 1) / team;
            for (int64_t q = q0; q < q1; q++) {
                const int64_t cb = q % cbs, r = q / cbs;
                const int64_t img = (row0 + r) / th, ty = (row0 + r) % th;
                (m == 4 ? input_row : input_row2)(p, x + (img * cbs + cb) * H * W * B,
                                                  m * ty - p->pt, tw, V + r * tw * ldv + cb * B,
                                                  ldv, vstride, rbuf);
            }
            if (!priv) {
#pragma omp barrier
            }
            /* 2. GEMMs, then the output transform of the task's tiles */
            const int64_t nchunk = (ntiles + nt - 1) / nt;
#pragma omp for schedule(static)
            for (int64_t q = 0; q < nchunk * nkr; q++) {
                const int64_t ch = q / nkr, kr = q % nkr;
                const int64_t l0 = split_at(ntiles, nchunk, ch, align);
                const int64_t l1 = split_at(ntiles, nchunk, ch + 1, align);
                const int64_t k0 = split_at(npanels, nkr, kr, 1) * 16 * pstep;
                int64_t k1 = split_at(npanels, nkr, kr + 1, 1) * 16 * pstep;
                if (k1 > kp)
                    k1 = kp;
                if (l1 <= l0 || k1 <= k0)
                    continue;
                gemm(nxi, V, vstride, ldv, packed, kp, cp, M, mstride, ldm, l0, l1, k0, k1);
                for (int64_t l = l0; l < l1; l++) {
                    const int64_t r = l / tw, tx = l % tw;
                    const int64_t img = (row0 + r) / th, ty = (row0 + r) % th;
                    for (int64_t ob = k0 / B; ob < k1 / B; ob++) {
                        const int64_t plane = (img * kbs + ob) * OH * OW * B;
                        (m == 4 ? output_tile : output_tile2)(
                            p, M + (l - l0) * ldm + ob * B - k0, mstride,
                            _mm256_load_ps(bias + ob * B), y + plane,
                            residual ? residual + plane : NULL, m * ty, m * tx);
                    }
                }
            }
        }
    }
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
