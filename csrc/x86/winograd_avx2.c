#pragma GCC target("avx2,fma")
/* Winograd F(4x4, 3x3) on AVX2/FMA (algorithm and packed layout: see
 * csrc/ops/winograd.h, csrc/ops/winograd.c).
 *
 * Data flow, per "superblock" of whole tile rows (consecutive (image, tile
 * row) pairs, sized so the transformed input V stays within VBUDGET bytes),
 * in one OpenMP region with two static work-shared loops:
 *  1. input transform, over (channel, tile row): vertical 1-D pass B^T on
 *     8 image columns at a time straight from x (masked loads give the zero
 *     padding, any padding incl. asymmetric), then the horizontal pass on 8
 *     tiles at a time: the stride-4 tile windows are de-interleaved with
 *     128-bit loads + unpack shuffles (an 8x4 transpose), so every vector
 *     holds one transform element of 8 consecutive tiles. V is stored as 36
 *     row-major matrices (C, tiles): V[xi][c][tile].
 *  2. over (tile chunk, output-channel block): 36 GEMMs M[xi] = U[xi] V[xi]
 *     with a 6x16 (6x8 at tails) register-blocked FMA micro-kernel (U from
 *     the packed 6-row panels, broadcast; V rows loaded 16 tiles wide), into
 *     a per-thread M; then the output transform A^T m A on 8 tiles at a time,
 *     re-interleaved to 32 contiguous output columns by the inverse shuffle,
 *     with bias, residual and the activation fused into the store.
 * Blocking as ncnn's convolution_3x3_winograd.h / NNPACK: transform a block
 * of tiles for all channels, batched GEMM over the 36 positions while that
 * block is cache resident, then transform back (ideas only, no code taken).
 */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "../ops/winograd.h"
#include "gemm_kernel_avx2.h"
#include "vmath_avx2.h"
#include "winograd_avx2.h"
#include "pool.h"

#ifndef VBUDGET
#define VBUDGET ((int64_t)2 << 20)  /* bytes of transformed input per superblock */
#endif
#ifndef NTMAX
#define NTMAX 64   /* tiles per GEMM task (multiple of 8) */
#endif
#ifndef KBMAX
#define KBMAX 48   /* output channels per GEMM task (multiple of 6) */
#endif

/* ------------------------------------------------------------ transforms */

/* 8 floats of one input row at columns ix0..ix0+7, zero outside [0, w). */
static inline __m256 load_cols(const float *row, int64_t ix0, int64_t w)
{
    if (ix0 >= 0 && ix0 + 8 <= w)
        return _mm256_loadu_ps(row + ix0);
    const __m256i lane = _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                          _mm256_set1_epi32((int)ix0));
    const __m256i m = _mm256_and_si256(_mm256_cmpgt_epi32(lane, _mm256_set1_epi32(-1)),
                                       _mm256_cmpgt_epi32(_mm256_set1_epi32((int)w), lane));
    if (_mm256_testz_si256(m, m))
        return _mm256_setzero_ps();
    /* masked-off lanes are never accessed (no fault), only the address is formed */
    return _mm256_maskload_ps(row + ix0, m);
}

/* [p[0..3] | p[16..19]]: tiles t and t+4 of a stride-4 row of windows. */
static inline __m256 ld_pair(const float *p)
{
    return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(p)), _mm_loadu_ps(p + 16),
                                1);
}

/* Input transform of one channel plane xp (H, W) for the tile row whose
 * first input row is iy0 and tiles [0, tw): writes V[xi * vstride + l0 + t].
 * rbuf: 6 rows of rw floats (rw >= 32*ceil(tw/8) + 8). */
static void input_row(const cnn_conv2d_params *p, const float *xp, int64_t iy0, int64_t tw,
                      float *v, int64_t vstride, float *rbuf, int64_t rw)
{
    const int64_t H = p->h, W = p->w;
    const float *rows[6];
    for (int r = 0; r < 6; r++)
        rows[r] = iy0 + r >= 0 && iy0 + r < H ? xp + (iy0 + r) * W : NULL;
    /* vertical pass over the columns the tiles read: 4*tw + 2 (rounded to 8s,
     * the extra columns are zero or real data, never stored to y) */
    const int64_t ncols = 32 * ((tw + 7) / 8) + 8;
    for (int64_t j = 0; j < ncols; j += 8) {
        const int64_t ix0 = j - p->pl;
        __m256 d[6], r[6];
        for (int q = 0; q < 6; q++)
            d[q] = rows[q] ? load_cols(rows[q], ix0, W) : _mm256_setzero_ps();
        bt6v(d[0], d[1], d[2], d[3], d[4], d[5], r);
        for (int q = 0; q < 6; q++)
            _mm256_store_ps(rbuf + q * rw + j, r[q]);
    }
    /* horizontal pass: 8 tiles per step */
    for (int64_t t = 0; t < tw; t += 8) {
        const int64_t nt = tw - t < 8 ? tw - t : 8;
        const __m256i mask = nt < 8 ? cnn_tail_mask(nt) : _mm256_set1_epi32(-1);
        for (int i = 0; i < 6; i++) {
            const float *s = rbuf + i * rw + 4 * t;
            __m256 q0 = ld_pair(s), q1 = ld_pair(s + 4), q2 = ld_pair(s + 8);
            __m256 q3 = ld_pair(s + 12), q4 = ld_pair(s + 16);
            __m256 t0 = _mm256_unpacklo_ps(q0, q1), t1 = _mm256_unpackhi_ps(q0, q1);
            __m256 t2 = _mm256_unpacklo_ps(q2, q3), t3 = _mm256_unpackhi_ps(q2, q3);
            __m256 t4 = _mm256_unpacklo_ps(q1, q2), t5 = _mm256_unpacklo_ps(q3, q4);
            __m256 d0 = _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(t0), _mm256_castps_pd(t2)));
            __m256 d1 = _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(t0), _mm256_castps_pd(t2)));
            __m256 d2 = _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(t1), _mm256_castps_pd(t3)));
            __m256 d3 = _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(t1), _mm256_castps_pd(t3)));
            __m256 d4 = _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(t4), _mm256_castps_pd(t5)));
            __m256 d5 = _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(t4), _mm256_castps_pd(t5)));
            __m256 r[6];
            bt6v(d0, d1, d2, d3, d4, d5, r);
            float *dst = v + (int64_t)(i * 6) * vstride + t;
            if (nt == 8) {
                for (int j = 0; j < 6; j++)
                    _mm256_storeu_ps(dst + j * vstride, r[j]);
            } else {
                for (int j = 0; j < 6; j++)
                    _mm256_maskstore_ps(dst + j * vstride, mask, r[j]);
            }
        }
    }
}

/* Epilogue + store of one output row segment: o[0..3] hold 32 contiguous
 * columns, `valid` (1..32) of which are stored at yr (residual rr or NULL). */
static inline void store_row(const cnn_epilogue *ep, __m256 o[4], float *yr, const float *rr,
                             int64_t valid)
{
    const int act = ep->act;
    for (int q = 0; q < 4 && 8 * q < valid; q++) {
        const int64_t cnt = valid - 8 * q;
        __m256 v = o[q];
        if (cnt >= 8) {
            if (rr)
                v = _mm256_add_ps(v, _mm256_loadu_ps(rr + 8 * q));
            if (act == CNN_ACT_RELU)
                v = _mm256_max_ps(_mm256_setzero_ps(), v);
            else if (act == CNN_ACT_CLIP)
                v = _mm256_min_ps(CNN_V(ep->beta), _mm256_max_ps(CNN_V(ep->alpha), v));
            _mm256_storeu_ps(yr + 8 * q, v);
        } else {
            const __m256i m = cnn_tail_mask(cnt);
            if (rr)
                v = _mm256_add_ps(v, _mm256_maskload_ps(rr + 8 * q, m));
            if (act == CNN_ACT_RELU)
                v = _mm256_max_ps(_mm256_setzero_ps(), v);
            else if (act == CNN_ACT_CLIP)
                v = _mm256_min_ps(CNN_V(ep->beta), _mm256_max_ps(CNN_V(ep->alpha), v));
            _mm256_maskstore_ps(yr + 8 * q, m, v);
        }
    }
    if (act != CNN_ACT_NONE && act != CNN_ACT_RELU && act != CNN_ACT_CLIP)
        cnn_act_inplace(ep, yr, valid);
}

/* Output transform of 8 tiles (tx0.. of one tile row) for one output
 * channel: m points at M[0][row][col], consecutive xi are mstride apart. */
static void output_tiles(const cnn_conv2d_params *p, const float *m, int64_t mstride,
                         float bias, float *yp, const float *rp, int64_t oy0, int64_t tx0,
                         int64_t nt)
{
    const int64_t OH = p->oh, OW = p->ow;
    __m256 s[4][6];
    for (int j = 0; j < 6; j++) {  /* columns: s = A^T m */
        __m256 o[4];
        at6v(_mm256_loadu_ps(m + (0 * 6 + j) * mstride), _mm256_loadu_ps(m + (1 * 6 + j) * mstride),
             _mm256_loadu_ps(m + (2 * 6 + j) * mstride), _mm256_loadu_ps(m + (3 * 6 + j) * mstride),
             _mm256_loadu_ps(m + (4 * 6 + j) * mstride), _mm256_loadu_ps(m + (5 * 6 + j) * mstride),
             o);
        for (int a = 0; a < 4; a++)
            s[a][j] = o[a];
    }
    int64_t valid = OW - 4 * tx0;
    if (valid > 4 * nt)
        valid = 4 * nt;
    if (valid > 32)
        valid = 32;
    const __m256 bv = CNN_V(bias);
    for (int a = 0; a < 4 && oy0 + a < OH; a++) {
        __m256 y[4];
        at6v(s[a][0], s[a][1], s[a][2], s[a][3], s[a][4], s[a][5], y);
        for (int q = 0; q < 4; q++)
            y[q] = _mm256_add_ps(y[q], bv);
        /* lanes are tiles, y[q] is column q of each: re-interleave to rows */
        __m256 t0 = _mm256_unpacklo_ps(y[0], y[1]), t1 = _mm256_unpackhi_ps(y[0], y[1]);
        __m256 t2 = _mm256_unpacklo_ps(y[2], y[3]), t3 = _mm256_unpackhi_ps(y[2], y[3]);
        __m256 e0 = _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(t0), _mm256_castps_pd(t2)));
        __m256 e1 = _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(t0), _mm256_castps_pd(t2)));
        __m256 e2 = _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(t1), _mm256_castps_pd(t3)));
        __m256 e3 = _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(t1), _mm256_castps_pd(t3)));
        __m256 o[4];
        o[0] = _mm256_permute2f128_ps(e0, e1, 0x20);
        o[1] = _mm256_permute2f128_ps(e2, e3, 0x20);
        o[2] = _mm256_permute2f128_ps(e0, e1, 0x31);
        o[3] = _mm256_permute2f128_ps(e2, e3, 0x31);
        const int64_t off = (oy0 + a) * OW + 4 * tx0;
        store_row(&p->ep, o, yp + off, rp ? rp + off : NULL, valid);
    }
}

/* ------------------------------------------------------------- the GEMMs */

/* M (6 x 16) = A panel (kc x 6, packed) * B (kc rows of ldb, 16 wide). */
static void micro_6x16(int64_t kc, const float *restrict a, const float *restrict b,
                       int64_t ldb, float *restrict c, int64_t ldc)
{
    const cnn_acc_6x16 t = cnn_gemm_f32_avx2_6x16(kc, a, b, ldb);
    _mm256_storeu_ps(c, t.c00); _mm256_storeu_ps(c + 8, t.c01); c += ldc;
    _mm256_storeu_ps(c, t.c10); _mm256_storeu_ps(c + 8, t.c11); c += ldc;
    _mm256_storeu_ps(c, t.c20); _mm256_storeu_ps(c + 8, t.c21); c += ldc;
    _mm256_storeu_ps(c, t.c30); _mm256_storeu_ps(c + 8, t.c31); c += ldc;
    _mm256_storeu_ps(c, t.c40); _mm256_storeu_ps(c + 8, t.c41); c += ldc;
    _mm256_storeu_ps(c, t.c50); _mm256_storeu_ps(c + 8, t.c51);
}

/* The same, 8 wide (tile tails). */
static void micro_6x8(int64_t kc, const float *restrict a, const float *restrict b,
                      int64_t ldb, float *restrict c, int64_t ldc)
{
    const cnn_acc_6x8 t = cnn_gemm_f32_avx2_6x8(kc, a, b, ldb);
    _mm256_storeu_ps(c, t.c0); c += ldc;
    _mm256_storeu_ps(c, t.c1); c += ldc;
    _mm256_storeu_ps(c, t.c2); c += ldc;
    _mm256_storeu_ps(c, t.c3); c += ldc;
    _mm256_storeu_ps(c, t.c4); c += ldc;
    _mm256_storeu_ps(c, t.c5);
}

/* ---------------------------------------------------------------- driver */

static int64_t split_point(int64_t total, int64_t parts, int64_t i, int64_t align)
{
    if (i >= parts)
        return total;
    return total * i / parts / align * align;
}

typedef struct wino_job {
    const cnn_conv2d_params *p;
    const float *packed, *x, *bias, *residual;
    float *y, *ws, *V;
    int64_t th, tw, kb6, ldv, vstride, vsize, per, mstride, ldm, rw, nkb;
    int64_t row0, rows, nbs, nchunk;   /* the superblock */
} wino_job;

/* Stage 1, task q: channel q % C of tile row q / C into V. */
static void wino_in_unit(void *ctx, int64_t q, int slot)
{
    const wino_job *jb = (const wino_job *)ctx;
    const cnn_conv2d_params *p = jb->p;
    const int64_t C = p->c, H = p->h, W = p->w, th = jb->th, tw = jb->tw, row0 = jb->row0;
    const int64_t ldv = jb->ldv, vstride = jb->vstride, rw = jb->rw;
    const float *x = jb->x;
    float *V = jb->V;
    float *rbuf = jb->ws + jb->vsize + jb->per * slot + 36 * jb->mstride;
    /* tile row major: with the static split a thread transforms
     * the tile rows its GEMM tasks then read, from its own cache
     * (128->32 @56x56 at 2 threads: 2.4 -> 1.0 ms; channel-major,
     * each thread read the half of V the other core wrote) */
    const int64_t c = q % C, r = q / C;
    const int64_t img = (row0 + r) / th, ty = (row0 + r) % th;
    input_row(p, x + (img * C + c) * H * W, 4 * ty - p->pt, tw,
              V + c * ldv + r * tw, vstride, rbuf, rw);
}

/* Stage 2, task q: GEMMs and output transform of tile chunk q / nkb, k block q % nkb. */
static void wino_gemm_unit(void *ctx, int64_t q, int slot)
{
    const wino_job *jb = (const wino_job *)ctx;
    const cnn_conv2d_params *p = jb->p;
    const int64_t C = p->c, K = p->k, OH = p->oh, OW = p->ow, th = jb->th, tw = jb->tw;
    const int64_t kb6 = jb->kb6, ldv = jb->ldv, vstride = jb->vstride, mstride = jb->mstride;
    const int64_t ldm = jb->ldm, nkb = jb->nkb, row0 = jb->row0, nbs = jb->nbs,
                  nchunk = jb->nchunk;
    const float *packed = jb->packed, *bias = jb->bias, *residual = jb->residual;
    const float *V = jb->V;
    float *y = jb->y;
    float *M = jb->ws + jb->vsize + jb->per * slot;
    const int64_t ch = q / nkb, kbi = q % nkb;
    const int64_t l0 = split_point(nbs, nchunk, ch, 8);
    const int64_t l1 = split_point(nbs, nchunk, ch + 1, 8);
    const int64_t k0 = split_point(kb6, nkb, kbi, 1) * 6;
    int64_t k1 = split_point(kb6, nkb, kbi + 1, 1) * 6;
    if (l1 <= l0 || k1 <= k0)
        return;
    const int64_t ncol = l1 - l0;
    for (int xi = 0; xi < 36; xi++) {
        const float *vb = V + xi * vstride + l0;
        for (int64_t k = k0; k < k1; k += 6) {
            const float *a = packed + (xi * kb6 + k / 6) * C * 6;
            float *mrow = M + xi * mstride + (k - k0) * ldm;
            int64_t j = 0;
            for (; j + 8 < ncol; j += 16)
                micro_6x16(C, a, vb + j, ldv, mrow + j, ldm);
            if (j < ncol)
                micro_6x8(C, a, vb + j, ldv, mrow + j, ldm);
        }
    }
    if (k1 > K)
        k1 = K;
    /* output transform over the row segments of [l0, l1) */
    for (int64_t k = k0; k < k1; k++) {
        const float b = bias ? bias[k] : 0.f;
        const float *mk = M + (k - k0) * ldm;
        for (int64_t l = l0; l < l1;) {
            const int64_t r = l / tw, tx = l % tw;
            const int64_t img = (row0 + r) / th, ty = (row0 + r) % th;
            int64_t seg = tw - tx < l1 - l ? tw - tx : l1 - l;
            const int64_t plane = (img * K + k) * OH * OW;
            for (int64_t t = 0; t < seg; t += 8)
                output_tiles(p, mk + (l - l0) + t, mstride, b, y + plane,
                             residual ? residual + plane : NULL, 4 * ty, tx + t,
                             seg - t < 8 ? seg - t : 8);
            l += seg;
        }
    }
}

cnn_status cnn_winograd_run_f32_avx2(const cnn_conv2d_params *p, const float *packed,
                                     const float *x, const float *bias,
                                     const float *residual, float *y, int threads)
{
    const int64_t C = p->c, K = p->k, OH = p->oh, OW = p->ow;
    const int64_t th = (OH + 3) / 4, tw = (OW + 3) / 4, kb6 = cnn_wino_kpad(K) / 6;
    const int64_t nrows = p->n * th;  /* (image, tile row) pairs */
    /* superblock: whole tile rows, V = 36 x C x tiles within VBUDGET */
    int64_t rows_sb = VBUDGET / (36 * 4 * C * tw);
    if (rows_sb * tw < 32)  /* but enough tiles to amortise streaming U */
        rows_sb = (32 + tw - 1) / tw;
    if (rows_sb > nrows)
        rows_sb = nrows;
    const int64_t nsb = (nrows + rows_sb - 1) / rows_sb;
    const int64_t nbs_max = rows_sb * tw;
    int64_t ldv = (nbs_max + 15) / 16 * 16 + 16;
    if (ldv % 256 == 0)  /* avoid 1 KiB-multiple row strides (cache set aliasing) */
        ldv += 16;
    const int64_t vstride = C * ldv;   /* between consecutive xi */
    /* GEMM tasks: tile chunks x output-channel blocks */
    const int64_t nchunk_max = (nbs_max + NTMAX - 1) / NTMAX;
    int64_t nkb = (K + KBMAX - 1) / KBMAX;
    while ((nchunk_max * nkb) % threads && nkb < kb6 && nchunk_max * nkb < 4 * threads)
        nkb++;
    const int64_t kbp = ((K + nkb - 1) / nkb + 5) / 6 * 6 + 6;  /* M rows per task (bound) */
    const int64_t ntp = (nbs_max < NTMAX ? nbs_max : NTMAX) + 16;  /* tiles per task (bound) */
    const int64_t ldm = (ntp + 15) / 16 * 16 + 8;
    const int64_t mstride = kbp * ldm;
    const int64_t rw = 32 * ((tw + 7) / 8) + 16;
    const int64_t per = 36 * mstride + 6 * rw;
    int64_t vsize, wsize;
    if (!cnn_mul_ok(36, vstride, &vsize) || !cnn_mul_ok(per, threads, &wsize) ||
        __builtin_add_overflow(wsize, vsize, &wsize))
        return CNN_ERR_SHAPE;
    float *ws = cnn_alloc_floats(wsize);
    if (!ws)
        return CNN_ERR_OOM;
    float *V = ws;
    memset(V, 0, (size_t)vsize * sizeof(float));  /* tile columns never written stay finite */

    wino_job jb = {p, packed, x, bias, residual, y, ws, V, th, tw, kb6, ldv, vstride, vsize, per,
                   mstride, ldm, rw, nkb, 0, 0, 0, 0};
    /* the static splits of the two stages match: a slot's GEMM tasks read
     * mostly the tile rows it transformed (steal moves only the tail) */
    for (int64_t sb = 0; sb < nsb; sb++) {
        jb.row0 = sb * rows_sb;
        jb.rows = nrows - jb.row0 < rows_sb ? nrows - jb.row0 : rows_sb;
        jb.nbs = jb.rows * tw;
        jb.nchunk = (jb.nbs + NTMAX - 1) / NTMAX;
        cnn_pool_for(threads, C * jb.rows, NULL, cnn_threads_steal(), wino_in_unit, &jb);
        cnn_pool_for(threads, jb.nchunk * nkb, NULL, cnn_threads_steal(), wino_gemm_unit, &jb);
    }
    free(ws);
    return CNN_OK;
}

#endif
