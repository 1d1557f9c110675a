#pragma GCC target("avx2,fma,avx512f,avx512dq,avx512bw,avx512vl")
/* Grouped 3x3 unstrided convolutions with groups of 16, 8 or 4 channels
 * each way (RegNetX, ResNeXt's first three stages), or of 24 to 64 in
 * whole blocks (RegNet's wider models) by Winograd F(2x2, 3x3),
 * AVX-512: a group's 16 channels are one zmm (its two blocks side by
 * side), 8 one ymm, four groups of 4 one zmm (lanes interleaved), so the
 * transforms are adds on whole vectors and each of the 16 positions is a
 * 16 x 16 (8 x 8, 4 x 4 per group) GEMM over up to 12 tiles (12
 * accumulators, one weight load per 12 FMAs with the tile's input
 * broadcast embedded): 256 FMAs per 2x2 tile of 16 where the direct tiles
 * take 576. U ([set][pos][ci][lanes], the direct pack's lane order) is
 * packed in csrc/ops/nchwc_grouped.c.
 *
 * Work: units of (image, set, chunk of up to 12 tiles), an equal
 * contiguous range per thread (a set's U, 16 KB for groups up to 16, stays
 * in L1 across its chunks; a group of 64's, 256 KB, in L2); per unit the
 * input transform into V [pos][tile][ci], the 16 GEMMs (M over V in place,
 * apart for wider groups), the output transform with bias, residual and
 * ReLU, stored to the set's blocks.
 */
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdlib.h>

#include "../ops/nchwc.h"
#include "pool.h"

#define B CNN_NCHWC
#define INLINE static inline __attribute__((always_inline))
#define TMAX 12

typedef struct wplan {
    const cnn_conv2d_params *p;
    int64_t blocks, sets, tw, tiles, chunks; /* tiles per (image, set) = th * tw, in chunks */
} wplan;

/* The set's 16 channels at input pixel (iy, ix) of blocks b0 (low half)
 * and b0 + 1 (high half; x1 NULL: none, zeros), zero outside the map. */
INLINE __m512 pix(const float *x0, const float *x1, const cnn_conv2d_params *p, int64_t iy,
                  int64_t ix, const int edge)
{
    if (edge && (iy < 0 || iy >= p->h || ix < 0 || ix >= p->w))
        return _mm512_setzero_ps();
    const int64_t at = (iy * p->w + ix) * B;
    const __m256 lo = _mm256_loadu_ps(x0 + at);
    return x1 ? _mm512_insertf32x8(_mm512_castps256_ps512(lo), _mm256_loadu_ps(x1 + at), 1)
              : _mm512_zextps256_ps512(lo);
}

/* V[pos][t] = B^T d B of tile (ty, tx) (d: the 4x4 input patch); groups
 * of 4 (S = 4) with their lanes interleaved on the way (ci * 4 + g) */
INLINE void in_tile(const float *x0, const float *x1, const cnn_conv2d_params *p, int64_t ty,
                    int64_t tx, float *v, int64_t vpos, __m512i idx, const int S, const int edge)
{
    const int64_t iy = 2 * ty - p->pt, ix = 2 * tx - p->pl;
    __m512 d[4][4], t[4][4];
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++)
            d[r][c] = pix(x0, x1, p, iy + r, ix + c, edge);
    for (int c = 0; c < 4; c++) {
        t[0][c] = _mm512_sub_ps(d[0][c], d[2][c]);
        t[1][c] = _mm512_add_ps(d[1][c], d[2][c]);
        t[2][c] = _mm512_sub_ps(d[2][c], d[1][c]);
        t[3][c] = _mm512_sub_ps(d[1][c], d[3][c]);
    }
#define VST(POS, VAL) \
    _mm512_store_ps(v + (POS) * vpos, S == 4 ? _mm512_permutexvar_ps(idx, VAL) : (VAL))
    for (int r = 0; r < 4; r++) {
        VST(r * 4 + 0, _mm512_sub_ps(t[r][0], t[r][2]));
        VST(r * 4 + 1, _mm512_add_ps(t[r][1], t[r][2]));
        VST(r * 4 + 2, _mm512_sub_ps(t[r][2], t[r][1]));
        VST(r * 4 + 3, _mm512_sub_ps(t[r][1], t[r][3]));
    }
#undef VST
}

/* One position: M[t] = sum over ci of U[ci] * V[t][ci], for NT tiles, in
 * place of V (S = 4: input ci of the 4 groups broadcast to their lanes). */
#define GFMA(T)                                                                     \
    if (NT > T)                                                                     \
        a##T = _mm512_fmadd_ps(S == 4 ? _mm512_broadcast_f32x4(_mm_load_ps(v + T * 16 + ci * 4)) \
                                      : _mm512_set1_ps(v[T * 16 + ci]), u, a##T);
#define GST(T)                                                                      \
    if (NT > T)                                                                     \
        _mm512_store_ps(v + T * 16, a##T);

INLINE void gemm_pos(const float *u0, float *v, const int NT, const int S)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
           a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
#pragma GCC unroll 16
    for (int ci = 0; ci < S; ci++) {
        const __m512 u = _mm512_load_ps(u0 + ci * 16);
        GFMA(0) GFMA(1) GFMA(2) GFMA(3) GFMA(4) GFMA(5)
        GFMA(6) GFMA(7) GFMA(8) GFMA(9) GFMA(10) GFMA(11)
    }
    GST(0) GST(1) GST(2) GST(3) GST(4) GST(5)
    GST(6) GST(7) GST(8) GST(9) GST(10) GST(11)
}

#define GEMM_CASES(F, S)                                                            \
    switch (nt) {                                                                   \
    case 12: F(up, vp, 12, S); break; case 11: F(up, vp, 11, S); break;             \
    case 10: F(up, vp, 10, S); break; case 9: F(up, vp, 9, S); break;               \
    case 8: F(up, vp, 8, S); break; case 7: F(up, vp, 7, S); break;                 \
    case 6: F(up, vp, 6, S); break; case 5: F(up, vp, 5, S); break;                 \
    case 4: F(up, vp, 4, S); break; case 3: F(up, vp, 3, S); break;                 \
    case 2: F(up, vp, 2, S); break; default: F(up, vp, 1, S); break;                \
    }

static void gemm(const float *u, float *v, int nt, int s)
{
    for (int pos = 0; pos < 16; pos++) {
        const float *up = u + pos * s * 16;
        float *vp = v + pos * TMAX * 16;
        if (s == 4)
            GEMM_CASES(gemm_pos, 4)
        else
            GEMM_CASES(gemm_pos, 16)
    }
}

/* One output pixel: bias (lane order), lanes back to channel order (groups
 * of 4), residual, ReLU, the low half to y0, the high to y1 (if any) */
INLINE __m512 out_pixel(__m512 v, __m512 bias, __m512i idx, float *y0, float *y1,
                        const float *r0, const float *r1, int64_t at, int relu, const int S)
{
    v = _mm512_add_ps(v, bias);
    if (S == 4)
        v = _mm512_permutexvar_ps(idx, v);
    if (r0) {
        const __m256 lo = _mm256_loadu_ps(r0 + at);
        v = _mm512_add_ps(v, r1 ? _mm512_insertf32x8(_mm512_castps256_ps512(lo), _mm256_loadu_ps(r1 + at), 1)
                                : _mm512_zextps256_ps512(lo));
    }
    if (relu)
        v = _mm512_max_ps(v, _mm512_setzero_ps());
    _mm256_storeu_ps(y0 + at, _mm512_castps512_ps256(v));
    if (y1)
        _mm256_storeu_ps(y1 + at, _mm512_extractf32x8_ps(v, 1));
    return v;
}

/* A^T M A of tile (ty, tx): its up to 2 x 2 output pixels, added to *sum */
INLINE void out_tile(const cnn_conv2d_params *p, const float *m, int64_t mpos, __m512 bias,
                     __m512i idx, int64_t ty, int64_t tx, float *y0, float *y1, const float *r0,
                     const float *r1, int relu, __m512 *sum, const int S)
{
    __m512 s[2][4];
    for (int c = 0; c < 4; c++) {
        const __m512 m0 = _mm512_load_ps(m + (0 * 4 + c) * mpos);
        const __m512 m1 = _mm512_load_ps(m + (1 * 4 + c) * mpos);
        const __m512 m2 = _mm512_load_ps(m + (2 * 4 + c) * mpos);
        const __m512 m3 = _mm512_load_ps(m + (3 * 4 + c) * mpos);
        s[0][c] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
        s[1][c] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
    }
    const int64_t oy = 2 * ty, ox = 2 * tx;
    for (int r = 0; r < 2 && oy + r < p->oh; r++) {
        const int64_t at = ((oy + r) * p->ow + ox) * B;
        *sum = _mm512_add_ps(*sum, out_pixel(_mm512_add_ps(_mm512_add_ps(s[r][0], s[r][1]), s[r][2]),
                                             bias, idx, y0, y1, r0, r1, at, relu, S));
        if (ox + 1 < p->ow)
            *sum = _mm512_add_ps(*sum, out_pixel(_mm512_sub_ps(_mm512_sub_ps(s[r][1], s[r][2]), s[r][3]),
                                                 bias, idx, y0, y1, r0, r1, at + B, relu, S));
    }
}

/* Groups of 8 (one block, one ymm; two ymm FMAs a cycle on Zen 4 are as
 * many flops as one zmm): the same steps on 8 lanes. */
INLINE __m256 pix8(const float *x0, const cnn_conv2d_params *p, int64_t iy, int64_t ix,
                   const int edge)
{
    if (edge && (iy < 0 || iy >= p->h || ix < 0 || ix >= p->w))
        return _mm256_setzero_ps();
    return _mm256_loadu_ps(x0 + (iy * p->w + ix) * B);
}

INLINE void in_tile8(const float *x0, const cnn_conv2d_params *p, int64_t ty, int64_t tx,
                     float *v, int64_t vpos, const int edge)
{
    const int64_t iy = 2 * ty - p->pt, ix = 2 * tx - p->pl;
    __m256 d[4][4], t[4][4];
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++)
            d[r][c] = pix8(x0, p, iy + r, ix + c, edge);
    for (int c = 0; c < 4; c++) {
        t[0][c] = _mm256_sub_ps(d[0][c], d[2][c]);
        t[1][c] = _mm256_add_ps(d[1][c], d[2][c]);
        t[2][c] = _mm256_sub_ps(d[2][c], d[1][c]);
        t[3][c] = _mm256_sub_ps(d[1][c], d[3][c]);
    }
    for (int r = 0; r < 4; r++) {
        _mm256_store_ps(v + (r * 4 + 0) * vpos, _mm256_sub_ps(t[r][0], t[r][2]));
        _mm256_store_ps(v + (r * 4 + 1) * vpos, _mm256_add_ps(t[r][1], t[r][2]));
        _mm256_store_ps(v + (r * 4 + 2) * vpos, _mm256_sub_ps(t[r][2], t[r][1]));
        _mm256_store_ps(v + (r * 4 + 3) * vpos, _mm256_sub_ps(t[r][1], t[r][3]));
    }
}

#define GFMA8(T)                                                                    \
    if (NT > T)                                                                     \
        a##T = _mm256_fmadd_ps(_mm256_set1_ps(v[T * 8 + ci]), u, a##T);
#define GST8(T)                                                                     \
    if (NT > T)                                                                     \
        _mm256_store_ps(v + T * 8, a##T);

INLINE void gemm_pos8(const float *u0, float *v, const int NT)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
           a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
#pragma GCC unroll 8
    for (int ci = 0; ci < 8; ci++) {
        const __m256 u = _mm256_load_ps(u0 + ci * 8);
        GFMA8(0) GFMA8(1) GFMA8(2) GFMA8(3) GFMA8(4) GFMA8(5)
        GFMA8(6) GFMA8(7) GFMA8(8) GFMA8(9) GFMA8(10) GFMA8(11)
    }
    GST8(0) GST8(1) GST8(2) GST8(3) GST8(4) GST8(5)
    GST8(6) GST8(7) GST8(8) GST8(9) GST8(10) GST8(11)
}

static void gemm8(const float *u, float *v, int nt)
{
    for (int pos = 0; pos < 16; pos++) {
        const float *up = u + pos * 64;
        float *vp = v + pos * TMAX * 8;
        switch (nt) {
        case 12: gemm_pos8(up, vp, 12); break;
        case 11: gemm_pos8(up, vp, 11); break;
        case 10: gemm_pos8(up, vp, 10); break;
        case 9: gemm_pos8(up, vp, 9); break;
        case 8: gemm_pos8(up, vp, 8); break;
        case 7: gemm_pos8(up, vp, 7); break;
        case 6: gemm_pos8(up, vp, 6); break;
        case 5: gemm_pos8(up, vp, 5); break;
        case 4: gemm_pos8(up, vp, 4); break;
        case 3: gemm_pos8(up, vp, 3); break;
        case 2: gemm_pos8(up, vp, 2); break;
        default: gemm_pos8(up, vp, 1); break;
        }
    }
}

INLINE __m256 out_pixel8(__m256 v, __m256 bias, float *y0, const float *r0, int64_t at, int relu)
{
    v = _mm256_add_ps(v, bias);
    if (r0)
        v = _mm256_add_ps(v, _mm256_loadu_ps(r0 + at));
    if (relu)
        v = _mm256_max_ps(v, _mm256_setzero_ps());
    _mm256_storeu_ps(y0 + at, v);
    return v;
}

INLINE void out_tile8(const cnn_conv2d_params *p, const float *m, int64_t mpos, __m256 bias,
                      int64_t ty, int64_t tx, float *y0, const float *r0, int relu, __m256 *sum)
{
    __m256 s[2][4];
    for (int c = 0; c < 4; c++) {
        const __m256 m0 = _mm256_load_ps(m + (0 * 4 + c) * mpos);
        const __m256 m1 = _mm256_load_ps(m + (1 * 4 + c) * mpos);
        const __m256 m2 = _mm256_load_ps(m + (2 * 4 + c) * mpos);
        const __m256 m3 = _mm256_load_ps(m + (3 * 4 + c) * mpos);
        s[0][c] = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);
        s[1][c] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
    }
    const int64_t oy = 2 * ty, ox = 2 * tx;
    for (int r = 0; r < 2 && oy + r < p->oh; r++) {
        const int64_t at = ((oy + r) * p->ow + ox) * B;
        *sum = _mm256_add_ps(*sum, out_pixel8(_mm256_add_ps(_mm256_add_ps(s[r][0], s[r][1]), s[r][2]),
                                              bias, y0, r0, at, relu));
        if (ox + 1 < p->ow)
            *sum = _mm256_add_ps(*sum, out_pixel8(_mm256_sub_ps(_mm256_sub_ps(s[r][1], s[r][2]), s[r][3]),
                                                  bias, y0, r0, at + B, relu));
    }
}

/* Unit q of groups of 8: (image, group, chunk) */
static void run_unit8(const wplan *g, const struct cnn_conv2d_nchwc *pk, int64_t q, const float *x,
                      const float *residual, float *y, const float *u, float *v, int relu,
                      float *sums)
{
    const cnn_conv2d_params *p = g->p;
    const int64_t ck = q % g->chunks, grp = q / g->chunks % p->groups, img = q / g->chunks / p->groups;
    const int64_t t0 = ck * g->tiles / g->chunks, t1 = (ck + 1) * g->tiles / g->chunks;
    const int64_t xplane = p->h * p->w * B, yplane = p->oh * p->ow * B;
    const float *x0 = x + (img * g->blocks + grp) * xplane;
    const int64_t yoff = (img * g->blocks + grp) * yplane;
    float *y0 = y + yoff;
    const float *r0 = residual ? residual + yoff : NULL;
    const int64_t vpos = TMAX * 8;
    for (int64_t t = t0; t < t1; t++) {
        const int64_t ty = t / g->tw, tx = t % g->tw;
        const int64_t iy = 2 * ty - p->pt, ix = 2 * tx - p->pl;
        float *vt = v + (t - t0) * 8;
        if (iy >= 0 && iy + 4 <= p->h && ix >= 0 && ix + 4 <= p->w)
            in_tile8(x0, p, ty, tx, vt, vpos, 0);
        else
            in_tile8(x0, p, ty, tx, vt, vpos, 1);
    }
    gemm8(u + grp * 16 * 64, v, (int)(t1 - t0));
    const __m256 bias = _mm256_loadu_ps(pk->bias + grp * 8);
    __m256 sum = _mm256_setzero_ps();
    for (int64_t t = t0; t < t1; t++)
        out_tile8(p, v + (t - t0) * 8, vpos, bias, t / g->tw, t % g->tw, y0, r0, relu, &sum);
    if (sums)
        _mm512_storeu_ps(sums + q * 16, _mm512_zextps256_ps512(sum));
}

/* Unit q of a zmm set (a group of 16, or 4 groups of 4): (image, set, chunk) */
INLINE void run_unit(const wplan *g, const struct cnn_conv2d_nchwc *pk, int64_t q, const float *x,
                     const float *residual, float *y, const float *u, float *v, __m512i idx_in,
                     __m512i idx_out, int relu, float *sums, const int S)
{
    const cnn_conv2d_params *p = g->p;
    const int64_t ck = q % g->chunks, j = q / g->chunks % g->sets, img = q / g->chunks / g->sets;
    const int64_t t0 = ck * g->tiles / g->chunks, t1 = (ck + 1) * g->tiles / g->chunks;
    const int64_t xplane = p->h * p->w * B, yplane = p->oh * p->ow * B;
    const int second = 2 * j + 1 < g->blocks;
    const float *x0 = x + (img * g->blocks + 2 * j) * xplane, *x1 = second ? x0 + xplane : NULL;
    const int64_t yoff = (img * g->blocks + 2 * j) * yplane;
    float *y0 = y + yoff, *y1 = second ? y0 + yplane : NULL;
    const float *r0 = residual ? residual + yoff : NULL, *r1 = r0 && second ? r0 + yplane : NULL;
    const int64_t vpos = TMAX * 16;
    for (int64_t t = t0; t < t1; t++) {
        const int64_t ty = t / g->tw, tx = t % g->tw;
        const int64_t iy = 2 * ty - p->pt, ix = 2 * tx - p->pl;
        float *vt = v + (t - t0) * 16;
        if (iy >= 0 && iy + 4 <= p->h && ix >= 0 && ix + 4 <= p->w)
            in_tile(x0, x1, p, ty, tx, vt, vpos, idx_in, S, 0);
        else
            in_tile(x0, x1, p, ty, tx, vt, vpos, idx_in, S, 1);
    }
    gemm(u + j * 16 * S * 16, v, (int)(t1 - t0), S);
    const __m512 bias = _mm512_loadu_ps(pk->bias + j * 16);
    __m512 sum = _mm512_setzero_ps();
    for (int64_t t = t0; t < t1; t++)
        out_tile(p, v + (t - t0) * 16, vpos, bias, idx_out, t / g->tw, t % g->tw, y0, y1, r0, r1,
                 relu, &sum, S);
    if (sums)
        _mm512_storeu_ps(sums + q * 16, sum);
}

static void run_unit16(const wplan *g, const struct cnn_conv2d_nchwc *pk, int64_t q, const float *x,
                       const float *residual, float *y, const float *u, float *v, int relu,
                       float *sums)
{
    const __m512i z = _mm512_setzero_si512();
    run_unit(g, pk, q, x, residual, y, u, v, z, z, relu, sums, 16);
}

static void run_unit4(const wplan *g, const struct cnn_conv2d_nchwc *pk, int64_t q, const float *x,
                      const float *residual, float *y, const float *u, float *v, int relu,
                      float *sums)
{
    /* lane ci * 4 + g <-> channel g * 4 + ci of the set */
    const __m512i idx = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
    run_unit(g, pk, q, x, residual, y, u, v, idx, idx, relu, sums, 4);
}

/* Wider groups (gi = s of 24 to 64, whole blocks): V [pos][tile][ci < s]
 * from each input block's 8 lanes, M [pos][tile][s] apart (a column chunk
 * of M would overwrite V rows the next chunk reads), each position's GEMM
 * in column chunks of 16 lanes (zmm) and a last 8 (ymm); rows of s floats
 * are 32-byte aligned, so zmm loads and stores are unaligned ones. */
#define WFMA(T)                                                                     \
    if (NT > T)                                                                     \
        a##T = _mm512_fmadd_ps(_mm512_set1_ps(vr[T * s]), u, a##T);
#define WST(T)                                                                      \
    if (NT > T)                                                                     \
        _mm512_storeu_ps(m + T * s, a##T);
#define WFMA8(T)                                                                    \
    if (NT > T)                                                                     \
        b##T = _mm256_fmadd_ps(_mm256_set1_ps(vr[T * s]), u, b##T);
#define WST8(T)                                                                     \
    if (NT > T)                                                                     \
        _mm256_storeu_ps(m + T * s, b##T);

/* One position, columns [c, c + 16) (or 8: half) of NT tiles */
INLINE void gemm_posw(const float *u0, const float *v, float *m, int64_t s, const int NT,
                      const int half)
{
    if (!half) {
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
               a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
#pragma GCC unroll 8
        for (int64_t ci = 0; ci < s; ci++) {
            const __m512 u = _mm512_loadu_ps(u0 + ci * s);
            const float *vr = v + ci;
            WFMA(0) WFMA(1) WFMA(2) WFMA(3) WFMA(4) WFMA(5)
            WFMA(6) WFMA(7) WFMA(8) WFMA(9) WFMA(10) WFMA(11)
        }
        WST(0) WST(1) WST(2) WST(3) WST(4) WST(5)
        WST(6) WST(7) WST(8) WST(9) WST(10) WST(11)
    } else {
        __m256 b0 = _mm256_setzero_ps(), b1 = b0, b2 = b0, b3 = b0, b4 = b0, b5 = b0, b6 = b0,
               b7 = b0, b8 = b0, b9 = b0, b10 = b0, b11 = b0;
#pragma GCC unroll 8
        for (int64_t ci = 0; ci < s; ci++) {
            const __m256 u = _mm256_loadu_ps(u0 + ci * s);
            const float *vr = v + ci;
            WFMA8(0) WFMA8(1) WFMA8(2) WFMA8(3) WFMA8(4) WFMA8(5)
            WFMA8(6) WFMA8(7) WFMA8(8) WFMA8(9) WFMA8(10) WFMA8(11)
        }
        WST8(0) WST8(1) WST8(2) WST8(3) WST8(4) WST8(5)
        WST8(6) WST8(7) WST8(8) WST8(9) WST8(10) WST8(11)
    }
}

/* GEMM_CASES's call for a wide set's position (its M apart, s lanes) */
#define POSW(UP, VP, NT, H) gemm_posw(UP, VP, mp, s, NT, H)

static void gemmw(const float *u, const float *v, float *m, int nt, int64_t s)
{
    for (int pos = 0; pos < 16; pos++)
        for (int64_t c = 0; c < s; c += 16) {
            const float *up = u + pos * s * s + c, *vp = v + pos * TMAX * s;
            float *mp = m + pos * TMAX * s + c;
            if (c + 16 <= s)
                GEMM_CASES(POSW, 0)
            else
                GEMM_CASES(POSW, 1)
        }
}

/* Unit q of groups of s channels: (image, group, chunk) */
static void run_unitw(const wplan *g, const struct cnn_conv2d_nchwc *pk, int64_t q, const float *x,
                      const float *residual, float *y, const float *u, int relu, float *sums)
{
    const cnn_conv2d_params *p = g->p;
    const int64_t s = pk->gi, nb = s / B, vpos = TMAX * s;
    float v[16 * TMAX * 64] __attribute__((aligned(64)));
    float m[16 * TMAX * 64] __attribute__((aligned(64)));
    const int64_t ck = q % g->chunks, grp = q / g->chunks % p->groups, img = q / g->chunks / p->groups;
    const int64_t t0 = ck * g->tiles / g->chunks, t1 = (ck + 1) * g->tiles / g->chunks;
    const int64_t xplane = p->h * p->w * B, yplane = p->oh * p->ow * B;
    const int64_t base = img * g->blocks + grp * nb;
    for (int64_t t = t0; t < t1; t++) {
        const int64_t ty = t / g->tw, tx = t % g->tw;
        const int64_t iy = 2 * ty - p->pt, ix = 2 * tx - p->pl;
        const int inside = iy >= 0 && iy + 4 <= p->h && ix >= 0 && ix + 4 <= p->w;
        for (int64_t b = 0; b < nb; b++) {
            float *vt = v + (t - t0) * s + b * B;
            if (inside)
                in_tile8(x + (base + b) * xplane, p, ty, tx, vt, vpos, 0);
            else
                in_tile8(x + (base + b) * xplane, p, ty, tx, vt, vpos, 1);
        }
    }
    gemmw(u + grp * 16 * s * s, v, m, (int)(t1 - t0), s);
    for (int64_t b = 0; b < nb; b++) {
        const __m256 bias = _mm256_loadu_ps(pk->bias + grp * s + b * B);
        float *y0 = y + (base + b) * yplane;
        const float *r0 = residual ? residual + (base + b) * yplane : NULL;
        __m256 sum = _mm256_setzero_ps();
        for (int64_t t = t0; t < t1; t++)
            out_tile8(p, m + (t - t0) * s + b * B, vpos, bias, t / g->tw, t % g->tw, y0, r0, relu,
                      &sum);
        if (sums)
            _mm256_storeu_ps(sums + q * s + b * B, sum);
    }
}

typedef struct gw_job {
    const wplan *g;
    const struct cnn_conv2d_nchwc *pk;
    const float *x, *residual, *u;
    float *y, *sums;
    int64_t gs;
    int relu;
} gw_job;

/* Unit q (image, set, tile chunk), its V on the stack. */
static void gw_unit(void *ctx, int64_t q, int slot)
{
    (void)slot;
    const gw_job *jb = (const gw_job *)ctx;
    if (jb->gs > 16) {
        run_unitw(jb->g, jb->pk, q, jb->x, jb->residual, jb->y, jb->u, jb->relu, jb->sums);
        return;
    }
    float v[16 * TMAX * 16] __attribute__((aligned(64)));
    if (jb->gs == 8)
        run_unit8(jb->g, jb->pk, q, jb->x, jb->residual, jb->y, jb->u, v, jb->relu, jb->sums);
    else if (jb->gs == 4)
        run_unit4(jb->g, jb->pk, q, jb->x, jb->residual, jb->y, jb->u, v, jb->relu, jb->sums);
    else
        run_unit16(jb->g, jb->pk, q, jb->x, jb->residual, jb->y, jb->u, v, jb->relu, jb->sums);
}

cnn_status cnn_nchwc_grouped_wino_avx512(const struct cnn_conv2d_nchwc *pk, int64_t n,
                                         const float *x, const float *residual, float *y,
                                         float *pool, int threads)
{
    const cnn_conv2d_params *p = &pk->p;
    wplan g;
    g.p = p;
    g.blocks = pk->ocb;
    g.tw = (p->ow + 1) / 2;
    g.tiles = (p->oh + 1) / 2 * g.tw;
    g.chunks = (g.tiles + TMAX - 1) / TMAX;
    const int64_t gs = pk->gi, lanes = cnn_nchwc_grouped_lanes(pk->gi);
    g.sets = (pk->ocb * B + lanes - 1) / lanes;
    const int64_t units = n * g.sets * g.chunks;
    /* U follows the direct pack (nchwc_grouped.c) */
    const float *u = pk->w + g.sets * 9 * gs * lanes;
    const int relu = p->ep.act == CNN_ACT_RELU;
    /* pool: each unit's channel sums (a set's lanes, 16 at least), added
     * up in unit order after (the same means whatever the thread count) */
    const int64_t sl = lanes > 16 ? lanes : 16;
    float *sums = pool ? cnn_alloc_floats(units * sl) : NULL;
    if (pool && !sums)
        return CNN_ERR_OOM;
    gw_job jb = {&g, pk, x, residual, u, y, sums, gs, relu};
    cnn_pool_for(threads, units, NULL, cnn_threads_steal(), gw_unit, &jb);
    const float scale = 1.f / (float)(p->oh * p->ow);
    for (int64_t pl = 0; sums && pl < n * g.sets; pl++)
        for (int64_t c = 0; c < lanes; c += B) {
            const int64_t img = pl / g.sets, b = pl % g.sets * lanes / B + c / B;
            __m256 a = _mm256_setzero_ps();
            for (int64_t k = 0; k < g.chunks; k++)
                a = _mm256_add_ps(a, _mm256_loadu_ps(sums + (pl * g.chunks + k) * sl + c));
            if (b < g.blocks)
                _mm256_storeu_ps(pool + (img * g.blocks + b) * B,
                                 _mm256_mul_ps(a, _mm256_set1_ps(scale)));
        }
    free(sums);
    return CNN_OK;
}
#endif
