#pragma GCC target("avx2,fma")
/* Blocked (NCHW8c) layer normalisation across channels on AVX2: 8 pixels
 * at a time, one accumulator per pixel over the channel blocks (each block
 * read as 8 consecutive pixels, 256 contiguous bytes), the 8 lane sums
 * finished by one transpose; two passes for mean and variance, a third
 * writes. The last block's lanes past C are masked out of the sums. */
#if defined(__x86_64__)
#include "../ops/channel_norm.h"
#include "vmath_avx2.h"

#define B CNN_NCHWC

/* The lane sums of r[0..8) as one vector (lane t: the sum of r[t]). */
static inline __m256 lane_sums8(__m256 *r)
{
    cnn_v_transpose8(r);
    const __m256 a = _mm256_add_ps(_mm256_add_ps(r[0], r[1]), _mm256_add_ps(r[2], r[3]));
    const __m256 b = _mm256_add_ps(_mm256_add_ps(r[4], r[5]), _mm256_add_ps(r[6], r[7]));
    return _mm256_add_ps(a, b);
}

static inline float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

/* Pixels p0..p0+7 (all inside the map). */
static void norm8(int64_t c, int64_t hw, int64_t p0, const float *x, const float *gamma,
                  const float *beta, float eps, __m256 last, float *y)
{
    const int64_t cbs = (c + B - 1) / B;
    __m256 acc[8];
    float mean[8], rstd[8];
    for (int t = 0; t < 8; t++)
        acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < cbs; b++) {
        const float *xb = x + (b * hw + p0) * B;
        const __m256 m = b == cbs - 1 ? last : _mm256_castsi256_ps(_mm256_set1_epi32(-1));
        for (int t = 0; t < 8; t++)
            acc[t] = _mm256_add_ps(acc[t], _mm256_and_ps(m, _mm256_loadu_ps(xb + t * B)));
    }
    const __m256 inv_c = _mm256_set1_ps(1.f / (float)c);
    _mm256_storeu_ps(mean, _mm256_mul_ps(lane_sums8(acc), inv_c));
    for (int t = 0; t < 8; t++)
        acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < cbs; b++) {
        const float *xb = x + (b * hw + p0) * B;
        const __m256 m = b == cbs - 1 ? last : _mm256_castsi256_ps(_mm256_set1_epi32(-1));
        for (int t = 0; t < 8; t++) {
            const __m256 d = _mm256_and_ps(m, _mm256_sub_ps(_mm256_loadu_ps(xb + t * B),
                                                            _mm256_broadcast_ss(mean + t)));
            acc[t] = _mm256_fmadd_ps(d, d, acc[t]);
        }
    }
    const __m256 var = _mm256_fmadd_ps(lane_sums8(acc), inv_c, _mm256_set1_ps(eps));
    _mm256_storeu_ps(rstd, _mm256_div_ps(_mm256_set1_ps(1.f), _mm256_sqrt_ps(var)));
    for (int64_t b = 0; b < cbs; b++) {
        const float *xb = x + (b * hw + p0) * B;
        float *yb = y + (b * hw + p0) * B;
        const __m256 g = _mm256_loadu_ps(gamma + b * B), be = _mm256_loadu_ps(beta + b * B);
        for (int t = 0; t < 8; t++) {
            const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(xb + t * B), _mm256_broadcast_ss(mean + t));
            const __m256 s = _mm256_mul_ps(g, _mm256_broadcast_ss(rstd + t));
            _mm256_storeu_ps(yb + t * B, _mm256_fmadd_ps(d, s, be));
        }
    }
}

/* One pixel (the tail of a range). */
static void norm1(int64_t c, int64_t hw, int64_t p, const float *x, const float *gamma,
                  const float *beta, float eps, __m256 last, float *y)
{
    const int64_t cbs = (c + B - 1) / B;
    __m256 s = _mm256_setzero_ps();
    for (int64_t b = 0; b < cbs; b++) {
        const __m256 m = b == cbs - 1 ? last : _mm256_castsi256_ps(_mm256_set1_epi32(-1));
        s = _mm256_add_ps(s, _mm256_and_ps(m, _mm256_loadu_ps(x + (b * hw + p) * B)));
    }
    const __m256 mean = _mm256_set1_ps(hsum(s) / (float)c);
    s = _mm256_setzero_ps();
    for (int64_t b = 0; b < cbs; b++) {
        const __m256 m = b == cbs - 1 ? last : _mm256_castsi256_ps(_mm256_set1_epi32(-1));
        const __m256 d = _mm256_and_ps(m, _mm256_sub_ps(_mm256_loadu_ps(x + (b * hw + p) * B), mean));
        s = _mm256_fmadd_ps(d, d, s);
    }
    const __m256 r = _mm256_set1_ps(1.f / sqrtf(hsum(s) / (float)c + eps));
    for (int64_t b = 0; b < cbs; b++) {
        const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + (b * hw + p) * B), mean);
        const __m256 g = _mm256_mul_ps(_mm256_loadu_ps(gamma + b * B), r);
        _mm256_storeu_ps(y + (b * hw + p) * B, _mm256_fmadd_ps(d, g, _mm256_loadu_ps(beta + b * B)));
    }
}

void cnn_channel_norm_nchwc_avx2(int64_t c, int64_t hw, int64_t p0, int64_t p1, const float *x,
                                 const float *gamma, const float *beta, float eps, float *y)
{
    const int64_t rem = c % B;
    const __m256 last = rem ? _mm256_castsi256_ps(cnn_tail_mask(rem))
                            : _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    int64_t p = p0;
    for (; p + 8 <= p1; p += 8)
        norm8(c, hw, p, x, gamma, beta, eps, last, y);
    for (; p < p1; p++)
        norm1(c, hw, p, x, gamma, beta, eps, last, y);
}
#endif
