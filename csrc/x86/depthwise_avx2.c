#pragma GCC target("avx2,fma")
/* Depthwise conv2d (groups == C == K) on AVX2: direct, 8 output columns per
 * ymm along each output row. The interior columns, whose taps are all in
 * bounds, take vector loads (stride 1: one unaligned load; stride 2: two
 * loads de-interleaved; larger strides: a gather); border columns take the
 * scalar path. Bias seeds the accumulator; residual and the activation run
 * per finished output row. OpenMP over (image, channel) planes. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "../ops/conv2d.h"

static inline float dw_point(const cnn_conv2d_params *p, const float *xp, const float *wp,
                             int64_t oy, int64_t ox, float b)
{
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
    return acc;
}

/* 8 input values xr[ix], xr[ix + s], ..., xr[ix + 7s], all in bounds. */
static inline __m256 load_strided(const float *xr, int64_t s, __m256i gidx)
{
    if (s == 1)
        return _mm256_loadu_ps(xr);
    if (s == 2) {
        __m256 a = _mm256_loadu_ps(xr);      /* x0..x7 */
        __m256 b = _mm256_loadu_ps(xr + 7);  /* x7..x14 */
        __m256 v = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 2, 0));
        return _mm256_castpd_ps(
            _mm256_permute4x64_pd(_mm256_castps_pd(v), _MM_SHUFFLE(3, 1, 2, 0)));
    }
    return _mm256_i32gather_ps(xr, gidx, 4);
}

cnn_status cnn_conv2d_depthwise_f32_avx2(const cnn_conv2d_params *p, const float *x,
                                         const float *w, const float *bias,
                                         const float *residual, float *y, int threads)
{
    const int64_t hw = p->h * p->w, ohw = p->oh * p->ow, khw = p->kh * p->kw;
    const int64_t sw = p->sw;
    /* Interior: ox*sw - pl >= 0 and ox*sw - pl + (kw-1)*dw <= w-1. */
    int64_t ox_a = p->pl <= 0 ? 0 : (p->pl + sw - 1) / sw;
    int64_t lim = p->w - 1 + p->pl - (p->kw - 1) * p->dw;
    int64_t ox_b = lim < 0 ? 0 : lim / sw + 1;
    if (ox_b > p->ow) ox_b = p->ow;
    if (ox_a > ox_b) ox_a = ox_b;
    if (sw > 8 || (int64_t)7 * sw >= (int64_t)1 << 31)  /* keep gather indices small */
        ox_b = ox_a;
    const __m256i gidx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                            _mm256_set1_epi32((int)(sw < 8 ? sw : 8)));
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t nc = 0; nc < p->n * p->c; nc++) {
        const int64_t ch = nc % p->c;
        const float *xp = x + nc * hw, *wp = w + ch * khw;
        float *yp = y + nc * ohw;
        const float b = bias ? bias[ch] : 0.f;
        const float *rp = residual ? residual + nc * ohw : NULL;
        for (int64_t oy = 0; oy < p->oh; oy++) {
            float *yr = yp + oy * p->ow;
            int64_t ox = 0;
            for (; ox < ox_a; ox++)
                yr[ox] = dw_point(p, xp, wp, oy, ox, b);
            for (; ox + 8 <= ox_b; ox += 8) {
                __m256 acc = _mm256_set1_ps(b);
                for (int64_t ky = 0; ky < p->kh; ky++) {
                    const int64_t iy = oy * p->sh - p->pt + ky * p->dh;
                    if (iy < 0 || iy >= p->h)
                        continue;
                    const float *xr = xp + iy * p->w + ox * sw - p->pl;
                    const float *wr = wp + ky * p->kw;
                    for (int64_t kx = 0; kx < p->kw; kx++)
                        acc = _mm256_fmadd_ps(_mm256_broadcast_ss(wr + kx),
                                              load_strided(xr + kx * p->dw, sw, gidx), acc);
                }
                _mm256_storeu_ps(yr + ox, acc);
            }
            for (; ox < p->ow; ox++)
                yr[ox] = dw_point(p, xp, wp, oy, ox, b);
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
    return CNN_OK;
}
#endif
