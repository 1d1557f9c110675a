#pragma GCC target("avx2,fma")
/* Depthwise conv2d (groups == C == K) on AVX2, NCHW, one (image, channel)
 * plane per OpenMP iteration.
 *
 * Padding and stride are resolved once per input row, not per tap: each
 * used input row is copied into a small per-thread ring of "phased" padded
 * rows. A padded row of stride sw is stored as sw phases, phase q holding
 * the padded columns q, q + sw, q + 2 sw, ... (zeros where the column is
 * padding), so tap kx of output column ox reads phase (kx*dw) % sw at index
 * ox + (kx*dw) / sw: every tap of every stride is a plain contiguous
 * unaligned load, no masks, no gathers, no shuffles in the inner loops (the
 * stride-2 de-interleave happens once, in the copy). Rows above/below the
 * image point at a shared zero row, as XNNPACK's dwconv2d-chw kernels take
 * a `zero` row pointer. The ring holds min(span, h) rows, span being the
 * input rows one block of output rows reads, and each input row is copied
 * once per plane; the zero padding columns of the ring are written once per
 * call and never overwritten.
 *
 * 3x3 and 5x5 at stride 1 or 2 (no dilation) run fixed-shape kernels
 * that compute R = 4 output rows per pass (ncnn's convdw3x3s1 / XNNPACK's
 * ROW_TILE idea): each loaded input vector feeds up to kh accumulators, one
 * per output row it belongs to, so loads per FMA stay well under one and
 * R independent FMA chains run per column vector (the out-of-order core
 * overlaps consecutive column vectors). Weights live in a local array the
 * compiler keeps in registers for 3x3 and broadcasts from L1 for 5x5. Any
 * other shape (kernel size, dilation, stride <= 8) runs a generic kernel on
 * the same phased rows: 4 column vectors per pass, runtime tap loops.
 * Strides > 8 take a scalar row.
 *
 * Epilogue in registers: bias seeds the accumulators, the residual is added
 * and relu/clip applied before the store; other activations run over each
 * finished row while it is in L1 (cnn_act_inplace). The last column vector
 * of a row is computed in full (its padding lanes read zeros or real
 * neighbours inside the ring row) and stored with a mask.
 */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "../ops/conv2d.h"
#include "vmath_avx2.h"
#include "pool.h"

#define DW_INLINE static inline __attribute__((always_inline))
#define DW_R 4                 /* output rows per pass of the fixed kernels */
#define DW_SPAN_MAX 16         /* >= (DW_R - 1) * 2 + 5 */

typedef struct dw_epi {
    int act;                   /* cnn_act */
    __m256 lo, hi;             /* broadcast alpha, beta */
    __m256i tail;              /* first ow % 8 lanes */
    int64_t rem;               /* ow % 8 */
    int instore;               /* 1 silu, 2 sigmoid applied by dw_store */
} dw_epi;

/* Geometry of the phased padded rows (shared by all threads). */
typedef struct dw_geom {
    const cnn_conv2d_params *p;
    int64_t s;                 /* phases = sw */
    int64_t lq;                /* floats per phase, multiple of 8 */
    int64_t rs;                /* floats per ring row = s * lq */
    int64_t slots;             /* ring rows */
} dw_geom;

/* Per-thread state: zero row, ring, which input row each slot holds. */
typedef struct dw_ctx {
    const dw_geom *g;
    const float *xp;           /* current input plane */
    float *zero, *ring;
    int64_t *tag;
} dw_ctx;

/* ------------------------------------------------------------ row copy */

/* Mask of the first k lanes, k clamped to [0, 8]. */
static inline __m256i lanes_mask(int64_t k)
{
    static const int32_t t[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256((const __m256i *)(t + 8 - (k < 0 ? 0 : k > 8 ? 8 : k)));
}

/* Copy input row src (w floats) into the phased padded row dst: input column
 * c goes to phase (c + pl) % s, index (c + pl) / s. Whole vectors are
 * stored; lanes past the row's end store zeros into the right padding /
 * slack (lq leaves room), so the padding stays zero. */
static void dw_copy_row(const dw_geom *g, const float *src, float *dst)
{
    const int64_t s = g->s, pl = g->p->pl, w = g->p->w;
    if (s == 1) {
        float *d = dst + pl;
        int64_t c = 0;
        for (; c + 8 <= w; c += 8)
            _mm256_storeu_ps(d + c, _mm256_loadu_ps(src + c));
        if (c < w)
            _mm256_storeu_ps(d + c, _mm256_maskload_ps(src + c, lanes_mask(w - c)));
    } else if (s == 2) {
        /* 16 columns c0.. at a time: the even ones to phase pl % 2 from index
         * (c0 + pl) / 2, the odd ones to the other phase from (c0 + 1 + pl) / 2 */
        float *de = dst + (pl & 1) * g->lq + pl / 2;
        float *dd = dst + ((pl + 1) & 1) * g->lq + (pl + 1) / 2;
        for (int64_t c = 0; c < w; c += 16) {
            __m256 a, b;
            if (c + 16 <= w) {
                a = _mm256_loadu_ps(src + c);
                b = _mm256_loadu_ps(src + c + 8);
            } else {
                a = _mm256_maskload_ps(src + c, lanes_mask(w - c));
                b = _mm256_maskload_ps(src + c + 8, lanes_mask(w - c - 8));
            }
            const __m256 ev = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)); /* 0 2 8 10 | 4 6 12 14 */
            const __m256 od = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
            _mm256_storeu_ps(de + c / 2, _mm256_castpd_ps(_mm256_permute4x64_pd(
                                             _mm256_castps_pd(ev), _MM_SHUFFLE(3, 1, 2, 0))));
            _mm256_storeu_ps(dd + c / 2, _mm256_castpd_ps(_mm256_permute4x64_pd(
                                             _mm256_castps_pd(od), _MM_SHUFFLE(3, 1, 2, 0))));
        }
    } else {
        int64_t q = pl % s, j = pl / s;
        for (int64_t c = 0; c < w; c++) {
            dst[q * g->lq + j] = src[c];
            if (++q == s) {
                q = 0;
                j++;
            }
        }
    }
}

/* Ring row of input row iy, or the zero row outside the image. A small
 * plane is copied whole when its first row is asked for (slots == h, row
 * iy in slot iy); a large one row by row on first use, into slot iy % slots. */
static inline const float *dw_row(dw_ctx *c, int64_t iy)
{
    const cnn_conv2d_params *p = c->g->p;
    if (iy < 0 || iy >= p->h)
        return c->zero;
    if (c->g->slots == p->h) {
        if (c->tag[0] < 0) {
            for (int64_t r = 0; r < p->h; r++)
                dw_copy_row(c->g, c->xp + r * p->w, c->ring + r * c->g->rs);
            c->tag[0] = 0;
        }
        return c->ring + iy * c->g->rs;
    }
    const int64_t slot = iy % c->g->slots;
    float *r = c->ring + slot * c->g->rs;
    if (c->tag[slot] != iy) {
        dw_copy_row(c->g, c->xp + iy * p->w, r);
        c->tag[slot] = iy;
    }
    return r;
}

#include "depthwise_epi_avx2.h"

/* ------------------------------------------------- fixed-shape kernels */

/* Column vectors j .. j+V-1 of R output rows; rows[i] is the ring row of
 * padded input row (first output row)*SH + i, lq the phase length. Loop
 * order kx -> input row -> output row: the KH weights of tap column kx sit
 * in registers, each input vector loaded once feeds every output row it
 * belongs to, so a pass (R=4, V=2) keeps 8 accumulators, KH weights and V
 * inputs in the 16 ymm registers and loads ~0.5 vectors per FMA. */
DW_INLINE void dw_fixed_vec(const float *const *rows, int64_t lq, const float *w, __m256 bv,
                            int64_t j, float *const *yr, const float *const *rr,
                            const dw_epi *e, int full, const int KH, const int KW,
                            const int SH, const int SW, const int R, const int V)
{
    __m256 acc[DW_R][2];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 2
        for (int t = 0; t < V; t++)
            acc[r][t] = bv;
#pragma GCC unroll 8
    for (int kx = 0; kx < KW; kx++) {
        __m256 wc[8];
#pragma GCC unroll 8
        for (int ky = 0; ky < KH; ky++)
            wc[ky] = _mm256_broadcast_ss(w + ky * KW + kx);
        const int64_t off = (kx % SW) * lq + kx / SW + 8 * j;
#pragma GCC unroll 16
        for (int i = 0; i < (R - 1) * SH + KH; i++) {
            __m256 v[2];
#pragma GCC unroll 2
            for (int t = 0; t < V; t++)
                v[t] = _mm256_loadu_ps(rows[i] + off + 8 * t);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                const int ky = i - r * SH;
                if (ky >= 0 && ky < KH)
#pragma GCC unroll 2
                    for (int t = 0; t < V; t++)
                        acc[r][t] = _mm256_fmadd_ps(v[t], wc[ky], acc[r][t]);
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 2
        for (int t = 0; t < V; t++)
            dw_store(yr[r] + 8 * (j + t), rr ? rr[r] + 8 * (j + t) : NULL, acc[r][t], e,
                     full);
}

DW_INLINE void dw_fixed(const float *const *rows, int64_t lq, const float *w, float b,
                        int64_t ow, float *const *yr, const float *const *rr, const dw_epi *e,
                        const int KH, const int KW, const int SH, const int SW, const int R)
{
    const float *rp[DW_SPAN_MAX];
    for (int i = 0; i < (R - 1) * SH + KH; i++)
        rp[i] = rows[i];
    const __m256 bv = _mm256_set1_ps(b);
    const int64_t nfull = ow >> 3;
    int64_t j = 0;
    for (; j + 2 <= nfull; j += 2)
        dw_fixed_vec(rp, lq, w, bv, j, yr, rr, e, 1, KH, KW, SH, SW, R, 2);
    if (j < nfull)
        dw_fixed_vec(rp, lq, w, bv, j, yr, rr, e, 1, KH, KW, SH, SW, R, 1);
    if (e->rem)
        dw_fixed_vec(rp, lq, w, bv, nfull, yr, rr, e, 0, KH, KW, SH, SW, R, 1);
}

typedef void (*dw_fixed_fn)(const float *const *, int64_t, const float *, float, int64_t,
                            float *const *, const float *const *, const dw_epi *);

#define DW_DEFINE(NAME, KH, KW, SH, SW, R)                                                 \
    static void NAME(const float *const *rows, int64_t lq, const float *w, float b,        \
                     int64_t ow, float *const *yr, const float *const *rr, const dw_epi *e) \
    {                                                                                      \
        dw_fixed(rows, lq, w, b, ow, yr, rr, e, KH, KW, SH, SW, R);                        \
    }
#define DW_DEFINE_R(P, KH, KW, SH, SW) \
    DW_DEFINE(P##_r1, KH, KW, SH, SW, 1) \
    DW_DEFINE(P##_r2, KH, KW, SH, SW, 2) \
    DW_DEFINE(P##_r3, KH, KW, SH, SW, 3) \
    DW_DEFINE(P##_r4, KH, KW, SH, SW, 4)

DW_DEFINE_R(dw3s1, 3, 3, 1, 1)
DW_DEFINE_R(dw3s2, 3, 3, 2, 2)
DW_DEFINE_R(dw5s1, 5, 5, 1, 1)
DW_DEFINE_R(dw5s2, 5, 5, 2, 2)

static const dw_fixed_fn dw_fixed_table[4][DW_R] = {
    {dw3s1_r1, dw3s1_r2, dw3s1_r3, dw3s1_r4},
    {dw3s2_r1, dw3s2_r2, dw3s2_r3, dw3s2_r4},
    {dw5s1_r1, dw5s1_r2, dw5s1_r3, dw5s1_r4},
    {dw5s2_r1, dw5s2_r2, dw5s2_r3, dw5s2_r4},
};

/* Index into dw_fixed_table, or -1 for the generic kernel. */
static int dw_fixed_kind(const cnn_conv2d_params *p)
{
    if (p->dh != 1 || p->dw != 1 || p->kh != p->kw || p->sh != p->sw)
        return -1;
    if (p->sh != 1 && p->sh != 2)
        return -1;
    if (p->kh == 3)
        return p->sh == 1 ? 0 : 1;
    if (p->kh == 5)
        return p->sh == 1 ? 2 : 3;
    return -1;
}

/* ------------------------------------------------------ generic kernel */

/* One output row, any kernel/dilation; rows[ky] the ring row of tap row ky,
 * off[kx] the offset of tap kx inside a ring row. */
static void dw_generic_row(const cnn_conv2d_params *p, const float *const *rows,
                           const int64_t *off, const float *w, float b, float *y,
                           const float *res, const dw_epi *e)
{
    const int64_t kh = p->kh, kw = p->kw, nfull = p->ow >> 3;
    const __m256 bv = _mm256_set1_ps(b);
    int64_t j = 0;
    for (; j + 4 <= nfull; j += 4) {
        __m256 a0 = bv, a1 = bv, a2 = bv, a3 = bv;
        for (int64_t ky = 0; ky < kh; ky++) {
            const float *r = rows[ky] + 8 * j;
            for (int64_t kx = 0; kx < kw; kx++) {
                const __m256 wv = _mm256_broadcast_ss(w + ky * kw + kx);
                const float *s = r + off[kx];
                a0 = _mm256_fmadd_ps(_mm256_loadu_ps(s), wv, a0);
                a1 = _mm256_fmadd_ps(_mm256_loadu_ps(s + 8), wv, a1);
                a2 = _mm256_fmadd_ps(_mm256_loadu_ps(s + 16), wv, a2);
                a3 = _mm256_fmadd_ps(_mm256_loadu_ps(s + 24), wv, a3);
            }
        }
        dw_store(y + 8 * j, res ? res + 8 * j : NULL, a0, e, 1);
        dw_store(y + 8 * j + 8, res ? res + 8 * j + 8 : NULL, a1, e, 1);
        dw_store(y + 8 * j + 16, res ? res + 8 * j + 16 : NULL, a2, e, 1);
        dw_store(y + 8 * j + 24, res ? res + 8 * j + 24 : NULL, a3, e, 1);
    }
    for (; j < nfull + (e->rem != 0); j++) {
        __m256 a0 = bv, a1 = _mm256_setzero_ps();
        for (int64_t ky = 0; ky < kh; ky++) {
            const float *r = rows[ky] + 8 * j;
            int64_t kx = 0;
            for (; kx + 2 <= kw; kx += 2) {
                a0 = _mm256_fmadd_ps(_mm256_loadu_ps(r + off[kx]),
                                     _mm256_broadcast_ss(w + ky * kw + kx), a0);
                a1 = _mm256_fmadd_ps(_mm256_loadu_ps(r + off[kx + 1]),
                                     _mm256_broadcast_ss(w + ky * kw + kx + 1), a1);
            }
            if (kx < kw)
                a0 = _mm256_fmadd_ps(_mm256_loadu_ps(r + off[kx]),
                                     _mm256_broadcast_ss(w + ky * kw + kx), a0);
        }
        dw_store(y + 8 * j, res ? res + 8 * j : NULL, _mm256_add_ps(a0, a1), e, j < nfull);
    }
}

/* Scalar row for strides > 8 (a phased row would be mostly unused phases). */
static void dw_row_scalar(const cnn_conv2d_params *p, const float *xp, const float *wp,
                          int64_t oy, float b, float *yr, const float *rr)
{
    for (int64_t ox = 0; ox < p->ow; ox++) {
        float acc = b;
        for (int64_t ky = 0; ky < p->kh; ky++) {
            const int64_t iy = oy * p->sh - p->pt + ky * p->dh;
            if (iy < 0 || iy >= p->h)
                continue;
            for (int64_t kx = 0; kx < p->kw; kx++) {
                const int64_t ix = ox * p->sw - p->pl + kx * p->dw;
                if (ix >= 0 && ix < p->w)
                    acc += wp[ky * p->kw + kx] * xp[iy * p->w + ix];
            }
        }
        yr[ox] = rr ? acc + rr[ox] : acc;
    }
    cnn_act_inplace(&p->ep, yr, p->ow);
}

/* ------------------------------------------- channel-blocked small planes */

/* Small output planes (7x7 .. 28x28): per-plane setup and rows of 7 or 14
 * floats dominate the row kernels above. Here a block of 8 channels of one
 * image is transposed into a zero-padded (Hp, Wp, 8) scratch (L1-resident),
 * each output pixel is a sum over the kh*kw taps of 8-wide FMAs with the 8
 * channels' weights (one vector per tap), and the (oh*ow, 8) result is
 * transposed back into the NCHW planes, where bias (seeded), residual and
 * the activation are applied on whole contiguous vectors of each plane.
 * Lanes of channels past C are zeros and never stored. */

#define CB_V 7                 /* output pixels per pass (rows of 7, 14) */

/* V output pixels of one output row: in at padded (oy*SH, ox*SW), rs the
 * scratch row stride in floats. Per tap row ky the KW weight vectors sit in
 * registers and each input vector, loaded once, feeds every pixel whose
 * window holds its column: V accumulators + KW weights + 1 input <= 13 ymm,
 * (V-1)*SW + KW + KW loads per V*KW FMAs. */
DW_INLINE void cb_pix(const float *in, int64_t rs, const float *w8, const __m256 *wv,
                      __m256 bv, float *out, const int KH, const int KW, const int SW,
                      const int V)
{
    __m256 acc[CB_V];
#pragma GCC unroll 8
    for (int j = 0; j < V; j++)
        acc[j] = bv;
#pragma GCC unroll 5
    for (int ky = 0; ky < KH; ky++) {
        const float *r = in + ky * rs;
        __m256 wk[5];
#pragma GCC unroll 5
        for (int kx = 0; kx < KW; kx++)  /* 3x3: all 9 held by the caller */
            wk[kx] = KH * KW <= 9 ? wv[ky * KW + kx] : _mm256_load_ps(w8 + 8 * (ky * KW + kx));
#pragma GCC unroll 20
        for (int c = 0; c < (V - 1) * SW + KW; c++) {
            const __m256 v = _mm256_load_ps(r + 8 * c);
#pragma GCC unroll 8
            for (int j = 0; j < V; j++) {
                const int kx = c - j * SW;
                if (kx >= 0 && kx < KW)
                    acc[j] = _mm256_fmadd_ps(v, wk[kx], acc[j]);
            }
        }
    }
#pragma GCC unroll 8
    for (int j = 0; j < V; j++)
        _mm256_store_ps(out + 8 * j, acc[j]);
}

#define CB_PIX(VV) cb_pix(r + 8 * ox * SW, rs, w8, wv, bv, out, KH, KW, SW, VV); out += 8 * VV; break;

DW_INLINE void cb_plane(const float *in, int64_t rs, const float *w8, __m256 bv, float *out,
                        int64_t oh, int64_t ow, const int KH, const int KW, const int SH,
                        const int SW, const int V)
{
    __m256 wv[9];
#pragma GCC unroll 9
    for (int t = 0; t < 9; t++)
        wv[t] = KH * KW <= 9 ? _mm256_load_ps(w8 + 8 * t) : _mm256_setzero_ps();
    for (int64_t oy = 0; oy < oh; oy++) {
        const float *r = in + oy * SH * rs;
        int64_t ox = 0;
        for (; ox + V <= ow; ox += V, out += 8 * V)
            cb_pix(r + 8 * ox * SW, rs, w8, wv, bv, out, KH, KW, SW, V);
        switch (ow - ox) {
        case 6: CB_PIX(6)
        case 5: CB_PIX(5)
        case 4: CB_PIX(4)
        case 3: CB_PIX(3)
        case 2: CB_PIX(2)
        case 1: CB_PIX(1)
        default: break;
        }
    }
}

typedef void (*cb_fn)(const float *, int64_t, const float *, __m256, float *, int64_t, int64_t);
#define CB_DEFINE(NAME, KH, KW, SH, SW, V)                                                  \
    static void NAME(const float *in, int64_t rs, const float *w8, __m256 bv, float *out, \
                     int64_t oh, int64_t ow)                                             \
    {                                                                                    \
        cb_plane(in, rs, w8, bv, out, oh, ow, KH, KW, SH, SW, V);                         \
    }
/* pixels per pass: 3x3 keeps its 9 weights in registers (4 accumulators);
 * 5x5 s1 reuses each input up to 5 times (7 accumulators, rows of 7/14) */
CB_DEFINE(cb3s1, 3, 3, 1, 1, 4)
CB_DEFINE(cb3s2, 3, 3, 2, 2, 4)
CB_DEFINE(cb5s1, 5, 5, 1, 1, 7)
CB_DEFINE(cb5s2, 5, 5, 2, 2, 4)
static const cb_fn cb_table[4] = {cb3s1, cb3s2, cb5s1, cb5s2};

/* Transpose (ohw, 8) back into nch planes y + ch*ohw (residual likewise),
 * 8 pixels at a time; the last ohw % 8 pixels stored in part. */
DW_INLINE void cb_out_t(const float *out, int64_t ohw, int nch, float *y, const float *res,
                        const dw_epi *e, const int act)
{
    for (int64_t q = 0; q < ohw; q += 8) {
        const int64_t n = ohw - q < 8 ? ohw - q : 8;
        __m256 r[8];
        for (int i = 0; i < 8; i++)
            r[i] = i < n ? _mm256_load_ps(out + 8 * (q + i)) : _mm256_setzero_ps();
        cnn_v_transpose8(r);
        for (int c = 0; c < nch; c++) {
            __m256 v = r[c];
            float *yc = y + c * ohw + q;
            if (res)
                v = _mm256_add_ps(v, n == 8 ? _mm256_loadu_ps(res + c * ohw + q)
                                            : _mm256_maskload_ps(res + c * ohw + q,
                                                                 cnn_tail_mask(n)));
            v = cb_act(v, e, act);
            if (n == 8)
                _mm256_storeu_ps(yc, v);
            else
                dw_store_part(yc, v, n);
        }
    }
}

/* cb_out with the activation's switch outside the loops. */
static void cb_out(const float *out, int64_t ohw, int nch, float *y, const float *res,
                   const dw_epi *e)
{
    switch (e->act) {
#define CB_OUT_CASE(A) case A: cb_out_t(out, ohw, nch, y, res, e, A); break;
    CB_OUT_CASE(CNN_ACT_RELU)
    CB_OUT_CASE(CNN_ACT_CLIP)
    CB_OUT_CASE(CNN_ACT_LEAKY)
    CB_OUT_CASE(CNN_ACT_ELU)
    CB_OUT_CASE(CNN_ACT_SIGMOID)
    CB_OUT_CASE(CNN_ACT_TANH)
    CB_OUT_CASE(CNN_ACT_SILU)
    CB_OUT_CASE(CNN_ACT_HARDSWISH)
    CB_OUT_CASE(CNN_ACT_HARDSIGMOID)
    CB_OUT_CASE(CNN_ACT_GELU)
    CB_OUT_CASE(CNN_ACT_GELU_TANH)
    CB_OUT_CASE(CNN_ACT_ERF)
#undef CB_OUT_CASE
    default: cb_out_t(out, ohw, nch, y, res, e, CNN_ACT_NONE); break;
    }
}

/* Scatter nch input planes (h, w) into the padded scratch at (pt, pl),
 * 8 pixels of the flattened plane at a time; missing channels are zeros. */
static void cb_in(const float *x, int64_t h, int64_t w, int nch, float *sc, int64_t wp,
                  int64_t pt, int64_t pl)
{
    const int64_t hw = h * w;
    int64_t iy = 0, ix = 0;
    for (int64_t q = 0; q < hw; q += 8) {
        const int64_t n = hw - q < 8 ? hw - q : 8;
        __m256 r[8];
        for (int c = 0; c < 8; c++)
            r[c] = c >= nch ? _mm256_setzero_ps()
                   : n == 8 ? _mm256_loadu_ps(x + c * hw + q)
                            : _mm256_maskload_ps(x + c * hw + q, cnn_tail_mask(n));
        cnn_v_transpose8(r);
        for (int i = 0; i < n; i++) {
            _mm256_store_ps(sc + 8 * ((iy + pt) * wp + ix + pl), r[i]);
            if (++ix == w) {
                ix = 0;
                iy++;
            }
        }
    }
}

typedef struct cb_job {
    const cnn_conv2d_params *p;
    const float *x, *w, *bias, *residual;
    float *y, *buf;
    const dw_epi *e;
    cb_fn fn;
    int64_t per, in_f, out_f, khw, hw, ohw, wp, nb;
    unsigned char *ready;   /* per slot: its padded input zeroed */
} cb_job;

/* Task t: 8 channels of one image through the slot's padded copy (its
 * border zeroed once, on the slot's first task). */
static void cb_unit(void *ctx, int64_t t, int slot)
{
    const cb_job *jb = (const cb_job *)ctx;
    const cnn_conv2d_params *p = jb->p;
    const float *x = jb->x, *w = jb->w, *bias = jb->bias, *residual = jb->residual;
    float *y = jb->y;
    const int64_t khw = jb->khw, hw = jb->hw, ohw = jb->ohw, wp = jb->wp, nb = jb->nb;
    float *sc = jb->buf + slot * jb->per, *out = sc + jb->in_f, *w8 = out + jb->out_f;
    if (!jb->ready[slot]) {
        memset(sc, 0, (size_t)jb->in_f * sizeof(float));
        jb->ready[slot] = 1;
    }
    const int64_t n = t / nb, c0 = (t % nb) * 8;
    const int nch = p->c - c0 < 8 ? (int)(p->c - c0) : 8;
    for (int64_t k = 0; k < khw; k++)
        for (int c = 0; c < 8; c++)
            w8[8 * k + c] = c < nch ? w[(c0 + c) * khw + k] : 0.f;
    float b8[8];
    for (int c = 0; c < 8; c++)
        b8[c] = bias && c < nch ? bias[c0 + c] : 0.f;
    const int64_t base = (n * p->c + c0);
    cb_in(x + base * hw, p->h, p->w, nch, sc, wp, p->pt, p->pl);
    jb->fn(sc, wp * 8, w8, _mm256_loadu_ps(b8), out, p->oh, p->ow);
    cb_out(out, ohw, nch, y + base * ohw, residual ? residual + base * ohw : NULL, jb->e);
}

/* Channel-blocked path: 1 where it ran (or failed with *st set), 0 where
 * the shape is not one it takes. */
static int dw_cblocked(const cnn_conv2d_params *p, const float *x, const float *w,
                       const float *bias, const float *residual, float *y, int threads,
                       cnn_status *st)
{
    const int kind = dw_fixed_kind(p);
    /* measured (1 thread): faster than the row kernels for output planes up
     * to 28x28 (7x7 960 ch 3x3: 0.075 -> 0.036 ms, 28x28 192 ch: 0.107 ->
     * 0.087), slower at 56x56 stride 1 (0.23 -> 0.24) */
    if (kind < 0 || p->oh * p->ow > 784)
        return 0;
    const int64_t hp0 = (p->oh - 1) * p->sh + p->kh, wp0 = (p->ow - 1) * p->sw + p->kw;
    const int64_t hp = hp0 > p->pt + p->h ? hp0 : p->pt + p->h;
    const int64_t wp = wp0 > p->pl + p->w ? wp0 : p->pl + p->w;
    if (hp > 128 || wp > 128)
        return 0;
    const int64_t in_f = hp * wp * 8, out_f = p->oh * p->ow * 8, khw = p->kh * p->kw;
    if (in_f > 32768)          /* 128 KiB: L2 (measured faster than the row
                                * kernels up to 56x56 inputs at stride 2) */
        return 0;
    const int64_t per_thread = in_f + out_f + khw * 8 + 8;
    const int64_t hw = p->h * p->w, ohw = p->oh * p->ow;
    const int64_t nb = (p->c + 7) / 8, tasks = p->n * nb;
    if (threads > tasks)
        threads = (int)tasks;

    dw_epi e;
    e.act = p->ep.act;
    e.lo = _mm256_set1_ps(p->ep.alpha);
    e.hi = _mm256_set1_ps(p->ep.beta);
    const cb_fn fn = cb_table[kind];

    /* slot buffers whole cache lines apart */
    const int64_t per = (per_thread + 15) / 16 * 16;
    float *buf = cnn_alloc_floats(per * threads);
    if (!buf) {
        *st = CNN_ERR_OOM;
        return 1;
    }
    unsigned char ready[CNN_POOL_MAX] = {0};
    cb_job jb = {p, x, w, bias, residual, y, buf, &e, fn, per, in_f, out_f, khw, hw, ohw, wp, nb,
                 ready};
    cnn_pool_for(threads, tasks, NULL, cnn_threads_steal(), cb_unit, &jb);
    free(buf);
    *st = CNN_OK;
    return 1;
}

typedef struct dws_job {
    const cnn_conv2d_params *p;
    const float *x, *w, *bias, *residual;
    float *y;
} dws_job;

/* Plane nc, row by row (stride > 8: the scalar rows). */
static void dws_unit(void *ctx, int64_t nc, int slot)
{
    (void)slot;
    const dws_job *jb = (const dws_job *)ctx;
    const cnn_conv2d_params *p = jb->p;
    const float *x = jb->x, *w = jb->w, *bias = jb->bias, *residual = jb->residual;
    float *y = jb->y;
    const int64_t hw = p->h * p->w, ohw = p->oh * p->ow, khw = p->kh * p->kw;
    const int64_t ch = nc % p->c;
    for (int64_t oy = 0; oy < p->oh; oy++)
        dw_row_scalar(p, x + nc * hw, w + ch * khw, oy, bias ? bias[ch] : 0.f,
                      y + nc * ohw + oy * p->ow,
                      residual ? residual + nc * ohw + oy * p->ow : NULL);
}

/* ------------------------------------------------------------- driver */

/* One plane with the phased ring. */
static void dw_plane(dw_ctx *c, int kind, const int64_t *off, const float **rows,
                     const float *wp, float b, float *yp, const float *rp, const dw_epi *e)
{
    const cnn_conv2d_params *p = c->g->p;
    const int64_t ow = p->ow;
    for (int64_t t = 0; t < c->g->slots; t++)
        c->tag[t] = -1;
    if (kind >= 0) {
        for (int64_t oy0 = 0; oy0 < p->oh; oy0 += DW_R) {
            const int64_t nr = p->oh - oy0 < DW_R ? p->oh - oy0 : DW_R;
            const int64_t span = (nr - 1) * p->sh + p->kh, top = oy0 * p->sh - p->pt;
            for (int64_t i = 0; i < span; i++)
                rows[i] = dw_row(c, top + i);
            float *yr[DW_R];
            const float *rr[DW_R];
            for (int64_t r = 0; r < nr; r++) {
                yr[r] = yp + (oy0 + r) * ow;
                rr[r] = rp ? rp + (oy0 + r) * ow : NULL;
            }
            dw_fixed_table[kind][nr - 1](rows, c->g->lq, wp, b, ow, yr, rp ? rr : NULL, e);
            /* the pass's nr output rows are one contiguous span of the
             * plane: one run of full vectors and a single tail (rows of
             * 7 or 14 floats are otherwise mostly tails: SiLU cost 50%
             * on top of a 7x7 or 14x14 depthwise conv, now ~25%) */
            if (e->act > CNN_ACT_CLIP && !e->instore)
                dw_act_rows(yr, 1, nr * ow, e);
        }
        return;
    }
    for (int64_t oy = 0; oy < p->oh; oy++) {
        for (int64_t ky = 0; ky < p->kh; ky++)
            rows[ky] = dw_row(c, oy * p->sh - p->pt + ky * p->dh);
        float *yr = yp + oy * ow;
        dw_generic_row(p, rows, off, wp, b, yr, rp ? rp + oy * ow : NULL, e);
        if (e->act > CNN_ACT_CLIP && !e->instore)
            dw_act_rows(&yr, 1, ow, e);
    }
}

typedef struct dw_job {
    const dw_geom *g;
    const float *x, *w, *bias, *residual;
    float *y;
    const dw_epi *e;
    float *buf;
    int64_t *meta;
    int64_t per, mper, nrows;
    int kind;
    unsigned char *ready;   /* per slot: its zero row and tap offsets set */
} dw_job;

/* Plane nc through the slot's ring (tags reset per plane; the zero row and
 * the tap offsets set on the slot's first plane). */
static void dw_unit(void *ctx, int64_t nc, int slot)
{
    const dw_job *jb = (const dw_job *)ctx;
    const dw_geom *g = jb->g;
    const cnn_conv2d_params *p = g->p;
    float *buf = jb->buf + slot * jb->per;
    int64_t *meta = jb->meta + slot * jb->mper;
    const float **rows = (const float **)(meta + g->slots);
    int64_t *off = meta + g->slots + jb->nrows;
    if (!jb->ready[slot]) {
        memset(buf, 0, (size_t)jb->per * sizeof(float));
        for (int64_t kx = 0; kx < p->kw; kx++)
            off[kx] = (kx * p->dw) % g->s * g->lq + (kx * p->dw) / g->s;
        jb->ready[slot] = 1;
    }
    dw_ctx c;
    c.g = g;
    c.zero = buf;
    c.ring = buf + g->rs;
    c.tag = meta;
    const int64_t ch = nc % p->c, khw = p->kh * p->kw, ohw = p->oh * p->ow;
    c.xp = jb->x + nc * p->h * p->w;
    dw_plane(&c, jb->kind, off, rows, jb->w + ch * khw, jb->bias ? jb->bias[ch] : 0.f,
             jb->y + nc * ohw, jb->residual ? jb->residual + nc * ohw : NULL, jb->e);
}

cnn_status cnn_conv2d_depthwise_f32_avx2(const cnn_conv2d_params *p, const float *x,
                                         const float *w, const float *bias,
                                         const float *residual, float *y, int threads)
{
    const int64_t planes = p->n * p->c;
    if (threads > planes)
        threads = (int)planes;
    cnn_status cst;
    if (dw_cblocked(p, x, w, bias, residual, y, threads, &cst))
        return cst;

    if (p->sw > 8) {
        dws_job jb = {p, x, w, bias, residual, y};
        cnn_pool_for(threads, planes, NULL, cnn_threads_steal(), dws_unit, &jb);
        return CNN_OK;
    }

    const int kind = dw_fixed_kind(p);
    dw_geom g;
    g.p = p;
    g.s = p->sw;
    /* phase length: the highest index read, 8*ceil(ow/8) - 1 + ((kw-1)*dw)/sw,
     * or written, (w - 1 + pl)/sw (+ 8 for the copy's full-vector tail
     * stores: s == 2 writes up to 8 past the row's last index), + 1 */
    const int64_t nv = (p->ow + 7) / 8, reach = (p->kw - 1) * p->dw / p->sw;
    int64_t lq, lw;
    if (!cnn_mul_ok(nv, 8, &lq) || __builtin_add_overflow(lq, reach, &lq) ||
        __builtin_add_overflow(p->w, p->pl, &lw))
        return CNN_ERR_SHAPE;
    lw = lw / p->sw + 8;
    if (lq < lw)
        lq = lw;
    if (__builtin_add_overflow(lq, 8 + 7, &lq))
        return CNN_ERR_SHAPE;
    g.lq = lq & ~(int64_t)7;
    const int64_t span = kind >= 0 ? (DW_R - 1) * p->sh + p->kh : (p->kh - 1) * p->dh + 1;
    g.slots = span < p->h ? span : p->h;
    int64_t ring_floats, per_thread;
    if (!cnn_mul_ok(g.s, g.lq, &g.rs))
        return CNN_ERR_SHAPE;
    if (p->h <= 16384 / g.rs)  /* small plane: keep it whole, no modulo */
        g.slots = p->h;
    if ( !cnn_mul_ok(g.slots + 1, g.rs, &ring_floats) ||
        __builtin_add_overflow(ring_floats, 16, &per_thread))
        return CNN_ERR_SHAPE;
    const int64_t nrows = kind >= 0 ? DW_SPAN_MAX : p->kh;
    int64_t meta_bytes;  /* tags, row pointers, tap offsets */
    if (!cnn_mul_ok(g.slots + nrows + p->kw, 8, &meta_bytes))
        return CNN_ERR_SHAPE;

    dw_epi e;
    e.act = p->ep.act;
    e.lo = _mm256_set1_ps(p->ep.alpha);
    e.hi = _mm256_set1_ps(p->ep.beta);
    e.rem = p->ow & 7;
    /* SiLU/sigmoid in registers where rows are short (7x7, 14x14 planes):
     * the row pass there reloads vectors just stored in 4+2+1-lane pieces
     * (no store forwarding) and pays its overhead per few floats; on wide
     * rows the separate pass is as fast and keeps the kernels' registers
     * free (1152 ch 3x3 @7x7 + SiLU: 0.140 -> 0.123 ms) */
    e.instore = 0;
    if (p->ow < 16 && p->ep.act == CNN_ACT_SILU)
        e.instore = 1;
    else if (p->ow < 16 && p->ep.act == CNN_ACT_SIGMOID)
        e.instore = 2;
    e.tail = cnn_tail_mask(e.rem ? e.rem : 1);

    /* slot buffers whole cache lines apart */
    const int64_t per = (per_thread + 15) / 16 * 16, mper = (meta_bytes + 63) / 64 * 64;
    float *buf = cnn_alloc_floats(per * threads);
    int64_t *meta = (int64_t *)malloc((size_t)(mper * threads));
    if (!buf || !meta) {
        free(buf);
        free(meta);
        return CNN_ERR_OOM;
    }
    unsigned char ready[CNN_POOL_MAX] = {0};
    dw_job jb = {&g, x, w, bias, residual, y, &e, buf, meta, per, mper / 8, nrows, kind, ready};
    cnn_pool_for(threads, planes, NULL, cnn_threads_steal(), dw_unit, &jb);
    free(buf);
    free(meta);
    return CNN_OK;
}
#endif
