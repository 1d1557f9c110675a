#pragma GCC target("avx2,fma")
/* Depthwise conv2d (groups == C == K) on AVX2, direct, along output rows.
 *
 * Interior columns (every tap in bounds) run 32 outputs at a time in four
 * ymm accumulators over all kh*kw taps, then 8 at a time; input vectors are
 * plain loads for stride 1, two loads de-interleaved for stride 2, gathers
 * for strides 3-8. Border columns take 8-wide vectors whose per-tap lane
 * masks (the valid column range [lo, hi) of each kx, computed once) drop
 * the padding: masked loads for stride 1, masked gathers otherwise. Bias
 * seeds the accumulators; residual and the activation run per finished
 * row. Strides > 8 and absurdly wide rows take a scalar row. OpenMP over
 * (image, channel) planes.
 */
#if defined(__x86_64__)
#include <immintrin.h>

#include "../ops/conv2d.h"

/* 8 input values xr[0], xr[s], ..., xr[7s], all in bounds. */
static inline __m256 load_strided(const float *xr, int64_t s, __m256i gidx)
{
    if (s == 1)
        return _mm256_loadu_ps(xr);
    if (s == 2) {
        __m256 a = _mm256_loadu_ps(xr);      /* x0..x7 */
        __m256 b = _mm256_loadu_ps(xr + 7);  /* x7..x14: never reads past x14 */
        __m256 v = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 2, 0));  /* x0 x2 x8 x10 | x4 x6 x12 x14 */
        return _mm256_castpd_ps(
            _mm256_permute4x64_pd(_mm256_castps_pd(v), _MM_SHUFFLE(3, 1, 2, 0)));
    }
    return _mm256_i32gather_ps(xr, gidx, 4);
}

/* Input vector for output columns ox..ox+7 of tap (row xr, offset off):
 * lanes whose column is outside [lo, hi) read nothing and give 0. */
static inline __m256 tap_load(const float *xr, int64_t ox, int64_t lo, int64_t hi,
                              int64_t sw, int64_t off, __m256i gidx)
{
    if (ox >= lo && ox + 8 <= hi)
        return load_strided(xr + ox * sw + off, sw, gidx);
    if (ox + 8 <= lo || ox >= hi)
        return _mm256_setzero_ps();
    const __m256i col = _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                         _mm256_set1_epi32((int)ox));
    const __m256i m = _mm256_and_si256(_mm256_cmpgt_epi32(col, _mm256_set1_epi32((int)lo - 1)),
                                       _mm256_cmpgt_epi32(_mm256_set1_epi32((int)hi), col));
    /* lane L reads xr[(ox + L)*sw + off]; masked lanes read nothing */
    const float *base = xr + ox * sw + off;
    if (sw == 1)
        return _mm256_maskload_ps(base, m);
    return _mm256_mask_i32gather_ps(_mm256_setzero_ps(), base, gidx, _mm256_castsi256_ps(m), 4);
}

/* Interior: 32 output columns ox..ox+31 whose taps are all in bounds, in
 * four ymm accumulators (four independent FMA chains per tap). */
static inline void dw_interior4(const cnn_conv2d_params *p, const float *xp, const float *wp,
                                int64_t oy, int64_t ox, float b, __m256i gidx, float *yr)
{
    __m256 a0 = _mm256_set1_ps(b), a1 = a0, a2 = a0, a3 = a0;
    const int64_t sw = p->sw, step = 8 * sw;
    for (int64_t ky = 0; ky < p->kh; ky++) {
        const int64_t iy = oy * p->sh - p->pt + ky * p->dh;
        if (iy < 0 || iy >= p->h)
            continue;
        const float *xr = xp + iy * p->w + ox * sw - p->pl;
        const float *wr = wp + ky * p->kw;
        for (int64_t kx = 0; kx < p->kw; kx++) {
            const __m256 wv = _mm256_broadcast_ss(wr + kx);
            const float *xk = xr + kx * p->dw;
            a0 = _mm256_fmadd_ps(wv, load_strided(xk, sw, gidx), a0);
            a1 = _mm256_fmadd_ps(wv, load_strided(xk + step, sw, gidx), a1);
            a2 = _mm256_fmadd_ps(wv, load_strided(xk + 2 * step, sw, gidx), a2);
            a3 = _mm256_fmadd_ps(wv, load_strided(xk + 3 * step, sw, gidx), a3);
        }
    }
    _mm256_storeu_ps(yr + ox, a0);
    _mm256_storeu_ps(yr + ox + 8, a1);
    _mm256_storeu_ps(yr + ox + 16, a2);
    _mm256_storeu_ps(yr + ox + 24, a3);
}

static inline void dw_interior1(const cnn_conv2d_params *p, const float *xp, const float *wp,
                                int64_t oy, int64_t ox, float b, __m256i gidx, float *yr)
{
    __m256 a0 = _mm256_set1_ps(b);
    for (int64_t ky = 0; ky < p->kh; ky++) {
        const int64_t iy = oy * p->sh - p->pt + ky * p->dh;
        if (iy < 0 || iy >= p->h)
            continue;
        const float *xr = xp + iy * p->w + ox * p->sw - p->pl;
        const float *wr = wp + ky * p->kw;
        for (int64_t kx = 0; kx < p->kw; kx++)
            a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(wr + kx),
                                 load_strided(xr + kx * p->dw, p->sw, gidx), a0);
    }
    _mm256_storeu_ps(yr + ox, a0);
}

/* Border: output columns ox..ox+7 (those < ow) with per-lane bounds masks. */
static void dw_masked(const cnn_conv2d_params *p, const int64_t *range, const float *xp,
                      const float *wp, int64_t oy, int64_t ox, float b, __m256i gidx, float *yr)
{
    __m256 a0 = _mm256_set1_ps(b);
    for (int64_t ky = 0; ky < p->kh; ky++) {
        const int64_t iy = oy * p->sh - p->pt + ky * p->dh;
        if (iy < 0 || iy >= p->h)
            continue;
        const float *xr = xp + iy * p->w;
        for (int64_t kx = 0; kx < p->kw; kx++)
            a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(wp + ky * p->kw + kx),
                                 tap_load(xr, ox, range[2 * kx], range[2 * kx + 1], p->sw,
                                          kx * p->dw - p->pl, gidx), a0);
    }
    if (ox + 8 <= p->ow) {
        _mm256_storeu_ps(yr + ox, a0);
    } else {
        float tmp[8];
        _mm256_storeu_ps(tmp, a0);
        for (int64_t t = ox; t < p->ow; t++)
            yr[t] = tmp[t - ox];
    }
}

/* Scalar fallback for strides > 8 (gather indices) and huge rows (int32 lanes). */
static void dw_row_scalar(const cnn_conv2d_params *p, const float *xp, const float *wp,
                          int64_t oy, float b, float *yr)
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
        yr[ox] = acc;
    }
}

cnn_status cnn_conv2d_depthwise_f32_avx2(const cnn_conv2d_params *p, const float *x,
                                         const float *w, const float *bias,
                                         const float *residual, float *y, int threads)
{
    const int64_t hw = p->h * p->w, ohw = p->oh * p->ow, khw = p->kh * p->kw, sw = p->sw;
    int64_t *range = (int64_t *)malloc((size_t)(2 * p->kw) * sizeof(int64_t));
    if (!range)
        return CNN_ERR_OOM;
    /* Output columns of tap kx whose input column ox*sw - pl + kx*dw is in [0, w). */
    for (int64_t kx = 0; kx < p->kw; kx++) {
        int64_t v = p->pl - kx * p->dw, u = p->w - 1 + p->pl - kx * p->dw;
        int64_t lo = v <= 0 ? 0 : (v + sw - 1) / sw, hi = u < 0 ? 0 : u / sw + 1;
        if (hi > p->ow) hi = p->ow;
        range[2 * kx] = lo < hi ? lo : hi;
        range[2 * kx + 1] = hi;
    }
    /* Interior columns: every tap in bounds, ox*sw - pl >= 0 and
     * ox*sw - pl + (kw-1)*dw <= w-1. */
    int64_t ox_a = p->pl <= 0 ? 0 : (p->pl + sw - 1) / sw;
    int64_t lim = p->w - 1 + p->pl - (p->kw - 1) * p->dw;
    int64_t ox_b = lim < 0 ? 0 : lim / sw + 1;
    if (ox_b > p->ow) ox_b = p->ow;
    const int vec = sw <= 8 && p->ow + 64 < ((int64_t)1 << 30) &&
                    (p->ow + 64) * sw + p->pl + p->w < ((int64_t)1 << 30);
    const __m256i gidx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                            _mm256_set1_epi32((int)(sw <= 8 ? sw : 1)));
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t nc = 0; nc < p->n * p->c; nc++) {
        const int64_t ch = nc % p->c;
        const float *xp = x + nc * hw, *wp = w + ch * khw;
        float *yp = y + nc * ohw;
        const float b = bias ? bias[ch] : 0.f;
        const float *rp = residual ? residual + nc * ohw : NULL;
        for (int64_t oy = 0; oy < p->oh; oy++) {
            float *yr = yp + oy * p->ow;
            if (!vec) {
                dw_row_scalar(p, xp, wp, oy, b, yr);
            } else {
                int64_t ox = 0;
                while (ox < p->ow) {
                    if (ox >= ox_a && ox + 32 <= ox_b) {
                        dw_interior4(p, xp, wp, oy, ox, b, gidx, yr);
                        ox += 32;
                    } else if (ox >= ox_a && ox + 8 <= ox_b) {
                        dw_interior1(p, xp, wp, oy, ox, b, gidx, yr);
                        ox += 8;
                    } else {
                        dw_masked(p, range, xp, wp, oy, ox, b, gidx, yr);
                        ox += 8;
                    }
                }
            }
            if (rp) {
                const float *rr = rp + oy * p->ow;
                int64_t t = 0;
                for (; t + 8 <= p->ow; t += 8)
                    _mm256_storeu_ps(yr + t, _mm256_add_ps(_mm256_loadu_ps(yr + t),
                                                           _mm256_loadu_ps(rr + t)));
                for (; t < p->ow; t++)
                    yr[t] += rr[t];
            }
            if (p->ep.act != CNN_ACT_NONE)
                cnn_act_inplace(&p->ep, yr, p->ow);
        }
    }
    free(range);
    return CNN_OK;
}
#endif
