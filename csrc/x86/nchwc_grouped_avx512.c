#pragma GCC target("avx2,fma,avx512f,avx512dq,avx512bw,avx512vl")
/* Small-group blocked convolutions for AVX-512 (the scheme and the pack:
 * csrc/ops/nchwc_grouped.c): groups of 8 one per ymm, groups of 4 or 2
 * interleaved 4 or 8 to a zmm, groups of 16 one per zmm.
 *
 * One run: each thread takes an equal contiguous range of the tiles of
 * all sets (a set's weights stay in L1 across its tiles); before a set's
 * tiles it copies the input rows they read into a copy of its own, padded
 * and split into stride phases (sh x sw planes: every tap then reads
 * consecutive pixels), a zmm set's channels interleaved on the way (one
 * permute per pixel). No barrier between copy and tiles: on a loaded
 * machine a barrier waits for a descheduled partner. A tile: up to 24
 * (ymm) or 12 (zmm) output pixels of one row (ymm on planes up to 12 wide:
 * two rows, so a 7x7 plane's tile has 14 accumulators, enough to hide the
 * FMA latency), one set; per tap and input channel one weight load and PX
 * FMAs. The ymm and the 16-wide zmm FMAs take their input as an embedded
 * broadcast ({1to8}, {1to16}: one uop, where the AVX2 tiles' separate
 * broadcast made two; on Zen 4 two ymm FMAs a cycle are as many flops as
 * one zmm); the interleaved sets need a broadcast of 4 or 8 floats, a
 * separate load (a microbenchmark under load: 0.7x the FMA rate of the
 * embedded form, still ahead of twice the multiplies).
 */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "../ops/nchwc.h"
#include "pool.h"

#define B CNN_NCHWC
#define INLINE static inline __attribute__((always_inline))

typedef struct gplan {
    const cnn_conv2d_params *p;
    int64_t lanes, sets, blocks, npix;
    int64_t hq, wq, phase;  /* a phase plane's rows, columns, floats */
    int64_t rows, ncol, tpp;  /* output rows per tile, tiles per row group, per (image, set) */
    const int64_t *toff;    /* tap_offsets */
} gplan;

/* channel order -> lanes (in) and back (out): lane o * G + g is channel
 * g * S + o of a zmm set */
static void lane_maps(int s, int *in, int *out)
{
    const int g = 16 / s;
    for (int l = 0; l < 16; l++) {
        in[l] = (l % g) * s + l / g;
        out[(l % g) * s + l / g] = l;
    }
}

/* Rows [r0, r1) of every phase plane of set j of image img, into xs (a
 * copy of the set's input). */
static void copy_rows(const gplan *g, const float *x, float *xs, __m512i idx, int64_t img,
                      int64_t j, int64_t r0, int64_t r1)
{
    const cnn_conv2d_params *p = g->p;
    const int64_t xplane = p->h * p->w * B, phases = p->sh * p->sw;
    for (int64_t q = 0; q < phases * (r1 - r0); q++) {
        const int64_t ph = q / (r1 - r0), r = r0 + q % (r1 - r0);
        const int64_t sy = r * p->sh + ph / p->sw - p->pt, px = ph % p->sw;
        float *d = xs + ph * g->phase + r * g->wq * g->lanes;
        if (sy < 0 || sy >= p->h) {
            memset(d, 0, (size_t)(g->wq * g->lanes) * sizeof(float));
            continue;
        }
        const int64_t b0 = j * g->lanes / B, L = g->lanes;
        const float *s0 = x + (img * g->blocks + b0) * xplane + sy * p->w * B;
        const float *s1 = L == 16 && b0 + 1 < g->blocks ? s0 + xplane : NULL;
        /* columns c whose input sx = c * sw + px - pl is inside [0, w) */
        const int64_t lo_num = p->pl - px, hi_num = p->w + p->pl - px;
        int64_t c0 = lo_num <= 0 ? 0 : (lo_num + p->sw - 1) / p->sw;
        int64_t c1 = hi_num <= 0 ? 0 : (hi_num + p->sw - 1) / p->sw;
        if (c1 > g->wq) c1 = g->wq;
        if (c0 > c1) c0 = c1;
        memset(d, 0, (size_t)(c0 * L) * sizeof(float));
        memset(d + c1 * L, 0, (size_t)((g->wq - c1) * L) * sizeof(float));
        const float *a = s0 + (c0 * p->sw + px - p->pl) * B, *b = s1 ? s1 + (a - s0) : NULL;
        const int64_t step = p->sw * B;
        if (L == 8 && p->sw == 1) {
            memcpy(d + c0 * 8, a, (size_t)((c1 - c0) * 8) * sizeof(float));
        } else if (L == 8) {
            for (int64_t c = c0; c < c1; c++, a += step)
                _mm256_store_ps(d + c * 8, _mm256_loadu_ps(a));
        } else {
            for (int64_t c = c0; c < c1; c++, a += step, b = b ? b + step : NULL) {
                const __m256 lo = _mm256_loadu_ps(a);
                const __m512 v = b ? _mm512_insertf32x8(_mm512_castps256_ps512(lo), _mm256_loadu_ps(b), 1)
                                   : _mm512_zextps256_ps512(lo);
                _mm512_store_ps(d + c * 16, _mm512_permutexvar_ps(idx, v));
            }
        }
    }
}

/* Each tap's input offset from a tile's first output pixel, in a set's copy */
static void tap_offsets(const gplan *g, int64_t *off)
{
    const cnn_conv2d_params *p = g->p;
    for (int64_t ky = 0; ky < p->kh; ky++)
        for (int64_t kx = 0; kx < p->kw; kx++) {
            const int64_t dy = ky * p->dh, dx = kx * p->dw;
            const int64_t ph = (dy % p->sh) * p->sw + dx % p->sw;
            off[ky * p->kw + kx] = ph * g->phase + ((dy / p->sh) * g->wq + dx / p->sw) * g->lanes;
        }
}

/* G floats (input channel ci of each group) on every lane of their group */
INLINE __m512 bcast(const float *a, const int S)
{
    if (S == 16)    /* one group: an embedded broadcast ({1to16}) */
        return _mm512_set1_ps(*a);
    if (S == 4)
        return _mm512_broadcast_f32x4(_mm_loadu_ps(a));
    return _mm512_broadcast_f32x8(_mm256_loadu_ps(a));
}

/* Groups of 8, one per ymm: R (1 or 2) rows from oy of PXR pixels from
 * column c0, R * PXR <= 24. */
#define YFMA(P)                                                                     \
    if (R * PXR > P)                                                                \
        a##P = _mm256_fmadd_ps(_mm256_set1_ps(xc[(P / PXR) * xrow + (P % PXR) * 8]), wv, a##P);
#define YOUT(P)                                                                     \
    if (R * PXR > P) {                                                              \
        const int64_t at = (P / PXR) * yrow + (P % PXR) * B;                        \
        __m256 v = r ? _mm256_add_ps(a##P, _mm256_loadu_ps(r + at)) : a##P;         \
        _mm256_storeu_ps(y + at, relu ? _mm256_max_ps(_mm256_setzero_ps(), v) : v); \
    }

INLINE void tile8(const gplan *g, const float *xs, const float *w, const float *bias, int64_t oy,
                  int64_t c0, float *y, const float *r, int relu, const int R, const int PXR)
{
    const cnn_conv2d_params *p = g->p;
    const __m256 b = _mm256_load_ps(bias);
    __m256 a0 = b, a1 = b, a2 = b, a3 = b, a4 = b, a5 = b, a6 = b, a7 = b, a8 = b, a9 = b,
           a10 = b, a11 = b, a12 = b, a13 = b, a14 = b, a15 = b, a16 = b, a17 = b, a18 = b,
           a19 = b, a20 = b, a21 = b, a22 = b, a23 = b;
    const float *x0 = xs + (oy * g->wq + c0) * 8;
    const int64_t taps = p->kh * p->kw, xrow = g->wq * 8, yrow = p->ow * B;
    for (int64_t t = 0; t < taps; t++) {
        const float *xt = x0 + g->toff[t];
        const float *wt = w + t * 8 * 8;
#pragma GCC unroll 8
        for (int ci = 0; ci < 8; ci++) {
            const __m256 wv = _mm256_load_ps(wt + ci * 8);
            const float *xc = xt + ci;
            YFMA(0) YFMA(1) YFMA(2) YFMA(3) YFMA(4) YFMA(5) YFMA(6) YFMA(7)
            YFMA(8) YFMA(9) YFMA(10) YFMA(11) YFMA(12) YFMA(13) YFMA(14) YFMA(15)
            YFMA(16) YFMA(17) YFMA(18) YFMA(19) YFMA(20) YFMA(21) YFMA(22) YFMA(23)
        }
    }
    YOUT(0) YOUT(1) YOUT(2) YOUT(3) YOUT(4) YOUT(5) YOUT(6) YOUT(7)
    YOUT(8) YOUT(9) YOUT(10) YOUT(11) YOUT(12) YOUT(13) YOUT(14) YOUT(15)
    YOUT(16) YOUT(17) YOUT(18) YOUT(19) YOUT(20) YOUT(21) YOUT(22) YOUT(23)
}

/* Groups of S = 16, 4 or 2, 16 / S to a zmm: PX (<= 12) pixels. */
#define ZFMA(P)                                                                     \
    if (PX > P)                                                                     \
        a##P = _mm512_fmadd_ps(bcast(xc + P * 16, S), wv, a##P);
#define ZOUT(P)                                                                     \
    if (PX > P)                                                                     \
        out_pixel(a##P, idx, y0 + P * B, y1 ? y1 + P * B : NULL, r0 ? r0 + P * B : NULL, \
                  r1 ? r1 + P * B : NULL, relu);

/* One pixel: lanes back to channel order, residual, ReLU, its one or two blocks */
INLINE void out_pixel(__m512 acc, __m512i idx, float *y0, float *y1, const float *r0,
                      const float *r1, int relu)
{
    __m512 v = _mm512_permutexvar_ps(idx, acc);
    if (r0) {
        const __m256 lo = _mm256_loadu_ps(r0);
        v = _mm512_add_ps(v, r1 ? _mm512_insertf32x8(_mm512_castps256_ps512(lo), _mm256_loadu_ps(r1), 1)
                                : _mm512_zextps256_ps512(lo));
    }
    if (relu)
        v = _mm512_max_ps(_mm512_setzero_ps(), v);
    _mm256_storeu_ps(y0, _mm512_castps512_ps256(v));
    if (y1)
        _mm256_storeu_ps(y1, _mm512_extractf32x8_ps(v, 1));
}

INLINE void tile16(const gplan *g, const float *xs, const float *w, const float *bias,
                   __m512i idx, int64_t oy, int64_t c0, float *y0, float *y1, const float *r0,
                   const float *r1, int relu, const int S, const int PX)
{
    const cnn_conv2d_params *p = g->p;
    const int G = 16 / S;
    const __m512 b = _mm512_load_ps(bias);
    __m512 a0 = b, a1 = b, a2 = b, a3 = b, a4 = b, a5 = b, a6 = b, a7 = b, a8 = b, a9 = b,
           a10 = b, a11 = b;
    const float *x0 = xs + (oy * g->wq + c0) * 16;
    const int64_t taps = p->kh * p->kw;
    for (int64_t t = 0; t < taps; t++) {
            const float *xt = x0 + g->toff[t];
            const float *wt = w + t * S * 16;
#pragma GCC unroll 16
            for (int ci = 0; ci < S; ci++) {
                const __m512 wv = _mm512_load_ps(wt + ci * 16);
                const float *xc = xt + ci * G;
                ZFMA(0) ZFMA(1) ZFMA(2) ZFMA(3) ZFMA(4) ZFMA(5)
                ZFMA(6) ZFMA(7) ZFMA(8) ZFMA(9) ZFMA(10) ZFMA(11)
            }
        }
    ZOUT(0) ZOUT(1) ZOUT(2) ZOUT(3) ZOUT(4) ZOUT(5)
    ZOUT(6) ZOUT(7) ZOUT(8) ZOUT(9) ZOUT(10) ZOUT(11)
}

#define CASES12(CALL)                                                                       \
    case 12: CALL(12); break; case 11: CALL(11); break; case 10: CALL(10); break;           \
    case 9: CALL(9); break; case 8: CALL(8); break; case 7: CALL(7); break;                 \
    case 6: CALL(6); break; case 5: CALL(5); break; case 4: CALL(4); break;                 \
    case 3: CALL(3); break; case 2: CALL(2); break; default: CALL(1); break;
#define CASES24(CALL)                                                                       \
    case 24: CALL(24); break; case 23: CALL(23); break; case 22: CALL(22); break;           \
    case 21: CALL(21); break; case 20: CALL(20); break; case 19: CALL(19); break;           \
    case 18: CALL(18); break; case 17: CALL(17); break; case 16: CALL(16); break;           \
    case 15: CALL(15); break; case 14: CALL(14); break; case 13: CALL(13); break;           \
    CASES12(CALL)

/* Global tile t: (image, set, group of g->rows output rows, column
 * chunk); a row's ow pixels in ncol chunks of sizes differing by at most one. */
static void run_tile(const gplan *g, const struct cnn_conv2d_nchwc *pk, int64_t t, const float *xs,
                     const float *residual, float *y, __m512i idx, int relu, cnn_act_row_fn act,
                     float *sums)
{
    const cnn_conv2d_params *p = g->p;
    const int64_t plane = t / g->tpp, k = t % g->tpp, oy = k / g->ncol * g->rows, ck = k % g->ncol;
    const int64_t rr = oy + g->rows <= p->oh ? g->rows : p->oh - oy;
    const int64_t img = plane / g->sets, j = plane % g->sets;
    const int64_t c0 = ck * p->ow / g->ncol, px = (ck + 1) * p->ow / g->ncol - c0;
    const int64_t lanes = g->lanes, s = pk->gi;
    const float *w = pk->w + j * p->kh * p->kw * s * lanes, *bias = pk->bias + j * lanes;
    const int64_t b0 = j * lanes / B, second = lanes == 16 && b0 + 1 < g->blocks;
    const int64_t off = (img * g->blocks + b0) * g->npix * B + (oy * p->ow + c0) * B;
    float *y0 = y + off, *y1 = second ? y0 + g->npix * B : NULL;
    const float *r0 = residual ? residual + off : NULL, *r1 = r0 && second ? r0 + g->npix * B : NULL;
    if (lanes == 8) {
#define CALL8(PX) tile8(g, xs, w, bias, oy, c0, y0, r0, relu, 1, PX)
#define CALL8R2(PX) tile8(g, xs, w, bias, oy, c0, y0, r0, relu, 2, PX)
        if (rr == 2) {
            switch (px) { CASES12(CALL8R2) }
        } else {
            switch (px) { CASES24(CALL8) }
        }
#undef CALL8
#undef CALL8R2
    } else if (s == 16) {
#define CALL16(PX) tile16(g, xs, w, bias, idx, oy, c0, y0, y1, r0, r1, relu, 16, PX)
        switch (px) { CASES12(CALL16) }
#undef CALL16
    } else if (s == 4) {
#define CALL4(PX) tile16(g, xs, w, bias, idx, oy, c0, y0, y1, r0, r1, relu, 4, PX)
        switch (px) { CASES12(CALL4) }
#undef CALL4
    } else {
#define CALL2(PX) tile16(g, xs, w, bias, idx, oy, c0, y0, y1, r0, r1, relu, 2, PX)
        switch (px) { CASES12(CALL2) }
#undef CALL2
    }
    for (int64_t i = 0; act && i < rr; i++) {
        act(&p->ep, y0 + i * p->ow * B, y0 + i * p->ow * B, px * B);
        if (y1)
            act(&p->ep, y1 + i * p->ow * B, y1 + i * p->ow * B, px * B);
    }
    if (sums) {     /* the tile's lane sums, read back from L1 */
        __m256 s0 = _mm256_setzero_ps(), s1 = s0;
        for (int64_t i = 0; i < rr; i++)
            for (int64_t c = 0; c < px; c++) {
                s0 = _mm256_add_ps(s0, _mm256_loadu_ps(y0 + i * p->ow * B + c * B));
                if (y1)
                    s1 = _mm256_add_ps(s1, _mm256_loadu_ps(y1 + i * p->ow * B + c * B));
            }
        _mm256_storeu_ps(sums + t * 16, s0);
        _mm256_storeu_ps(sums + t * 16 + 8, s1);
    }
}

typedef struct grouped_job {
    const gplan *g;
    const struct cnn_conv2d_nchwc *pk;
    const float *x, *residual;
    float *y, *sums, *xs;
    int64_t tiles, size;
    __m512i idx_in, idx_out;
    cnn_act_row_fn act;
    int relu, nt;
} grouped_job;

/* Unit id of nt: its contiguous share of the tiles, plane by plane, each
 * plane's phase rows copied once into the slot's xs. */
static void grouped_unit(void *ctx, int64_t id, int slot)
{
    const grouped_job *jb = (const grouped_job *)ctx;
    const gplan *g = jb->g;
    const cnn_conv2d_params *p = g->p;
    float *xs = jb->xs + slot * jb->size;
    const int64_t tiles = jb->tiles, t1 = tiles * (id + 1) / jb->nt;
    for (int64_t t = tiles * id / jb->nt; t < t1;) {
        /* this unit's tiles of plane t / tpp, and the phase rows they read */
        const int64_t plane = t / g->tpp, end = (plane + 1) * g->tpp < t1 ? (plane + 1) * g->tpp : t1;
        const int64_t oy0 = t % g->tpp / g->ncol * g->rows;
        int64_t oy1 = ((end - 1) % g->tpp / g->ncol + 1) * g->rows;
        if (oy1 > p->oh) oy1 = p->oh;
        const int64_t r1 = oy1 + (g->hq - p->oh);
        copy_rows(g, jb->x, xs, jb->idx_in, plane / g->sets, plane % g->sets, oy0, r1);
        for (; t < end; t++)
            run_tile(g, jb->pk, t, xs, jb->residual, jb->y, jb->idx_out, jb->relu, jb->act,
                     jb->sums);
    }
}

cnn_status cnn_nchwc_grouped_avx512(const struct cnn_conv2d_nchwc *pk, int64_t n, const float *x,
                                    const float *residual, float *y, float *pool, int threads)
{
    const cnn_conv2d_params *p = &pk->p;
    if (pk->gwino && (p->ep.act == CNN_ACT_NONE || p->ep.act == CNN_ACT_RELU))
        return cnn_nchwc_grouped_wino_avx512(pk, n, x, residual, y, pool, threads);
    gplan g;
    g.p = p;
    g.lanes = cnn_nchwc_grouped_lanes(pk->gi);
    g.blocks = pk->ocb;
    g.sets = (pk->ocb * B + g.lanes - 1) / g.lanes;
    g.npix = p->oh * p->ow;
    /* a phase plane holds every output's taps: oh + (kh - 1) * dh / sh rows */
    g.hq = p->oh + (p->kh - 1) * p->dh / p->sh;
    g.wq = p->ow + (p->kw - 1) * p->dw / p->sw;
    g.phase = g.hq * g.wq * g.lanes;
    const int64_t most = g.lanes == 8 ? 24 : 12;
    g.ncol = (p->ow + most - 1) / most;
    g.rows = g.lanes == 8 && p->ow <= 12 ? 2 : 1;
    g.tpp = (p->oh + g.rows - 1) / g.rows * g.ncol;
    int64_t size;
    if (!cnn_mul_ok(p->sh * p->sw, g.phase, &size))
        return CNN_ERR_SHAPE;
    const int64_t tiles = n * g.sets * g.tpp;
    int64_t *toff = (int64_t *)malloc((size_t)(p->kh * p->kw) * sizeof(int64_t));
    /* pool: each tile's lane sums, added up in tile order after (the same
     * means whatever the thread count) */
    float *sums = pool ? cnn_alloc_floats(tiles * 16) : NULL;
    if (!toff || (pool && !sums)) {
        free(toff);
        free(sums);
        return CNN_ERR_OOM;
    }
    g.toff = toff;
    tap_offsets(&g, toff);
    int in[16], out[16];
    lane_maps(pk->gi == 8 ? 8 : pk->gi, in, out);
    const __m512i idx_in = _mm512_loadu_si512(in), idx_out = _mm512_loadu_si512(out);
    const int relu = p->ep.act == CNN_ACT_RELU;
    /* the other activations over each stored tile (exp-based ones are calls) */
    const cnn_act_row_fn act = relu || p->ep.act == CNN_ACT_NONE ? NULL : cnn_plat()->act_row;
    if (threads > tiles)
        threads = (int)tiles;
    /* a set two units share is copied by both (its rows each reads) */
    const int64_t xsize = (size + 15) / 16 * 16;   /* whole cache lines per slot */
    float *xs = cnn_alloc_floats(xsize * threads);
    if (!xs) {
        free(toff);
        free(sums);
        return CNN_ERR_OOM;
    }
    grouped_job jb = {&g, pk, x, residual, y, sums, xs, tiles, xsize, idx_in, idx_out, act, relu,
                      threads};
    cnn_pool_for(threads, threads, NULL, cnn_threads_steal(), grouped_unit, &jb);
    free(xs);
    free(toff);
    for (int64_t pl = 0; sums && pl < n * g.sets; pl++) {
        __m512 a = _mm512_setzero_ps();
        for (int64_t k = 0; k < g.tpp; k++)
            a = _mm512_add_ps(a, _mm512_loadu_ps(sums + (pl * g.tpp + k) * 16));
        a = _mm512_mul_ps(a, _mm512_set1_ps(1.f / (float)g.npix));
        const int64_t img = pl / g.sets, b0 = pl % g.sets * g.lanes / B;
        _mm256_storeu_ps(pool + (img * g.blocks + b0) * B, _mm512_castps512_ps256(a));
        if (g.lanes == 16 && b0 + 1 < g.blocks)
            _mm256_storeu_ps(pool + (img * g.blocks + b0 + 1) * B, _mm512_extractf32x8_ps(a, 1));
    }
    free(sums);
    return CNN_OK;
}
#endif
