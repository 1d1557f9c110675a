/* The zmm helpers the AVX-512 blocked kernels share (nchwc_avx512.c's conv
 * tiles, depthwise_avx512.c): a block pair's pixel as one vector, and the
 * in-tile epilogue on 16 lanes. Included only by files compiled for
 * AVX-512 (their own #pragma GCC target). */
#ifndef CNN_NCHWC_AVX512_H
#define CNN_NCHWC_AVX512_H

#include <immintrin.h>

#include "nchwc_conv.h"

/* cnn_act_v on 16 lanes, with the AVX2 forms' NaN behaviour: the tile's
 * epilogue on one zmm instead of two ymm halves (a 32->192 1x1 spends a
 * quarter of its instructions storing). */
CNN_INLINE __m512 act512(const cnn_epilogue *ep, __m512 x)
{
    const __m512 zero = _mm512_setzero_ps();
    switch (ep->act) {
    case CNN_ACT_RELU:
        return _mm512_max_ps(zero, x); /* x second: NaN stays NaN */
    case CNN_ACT_CLIP: {
        const __m512 lo = _mm512_set1_ps(ep->alpha), hi = _mm512_set1_ps(ep->beta);
        const __m512 r = _mm512_mask_mov_ps(x, _mm512_cmp_ps_mask(x, hi, _CMP_GT_OQ), hi);
        return _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ), lo);
    }
    case CNN_ACT_LEAKY:
        return _mm512_mask_mov_ps(_mm512_mul_ps(_mm512_set1_ps(ep->alpha), x),
                                  _mm512_cmp_ps_mask(x, zero, _CMP_GE_OQ), x);
    case CNN_ACT_HARDSWISH: {
        __m512 t = _mm512_add_ps(x, _mm512_set1_ps(3.f));
        t = _mm512_min_ps(_mm512_set1_ps(6.f), _mm512_max_ps(zero, t));
        return _mm512_mul_ps(_mm512_mul_ps(x, t), _mm512_set1_ps(1.f / 6.f));
    }
    case CNN_ACT_HARDSIGMOID: {
        const __m512 t = _mm512_fmadd_ps(_mm512_set1_ps(ep->alpha), x, _mm512_set1_ps(ep->beta));
        return _mm512_min_ps(_mm512_set1_ps(1.f), _mm512_max_ps(zero, t));
    }
    default:
        return x;
    }
}

/* One pixel of n (1 or 2) blocks at y and y + yplane as a pair vector. */
CNN_INLINE __m512 load_pair(const float *y, int64_t yplane, const int n)
{
    const __m256 lo = _mm256_loadu_ps(y);
    return n == 2 ? _mm512_insertf32x8(_mm512_castps256_ps512(lo), _mm256_loadu_ps(y + yplane), 1)
                  : _mm512_zextps256_ps512(lo);
}

/* load_pair's inverse */
CNN_INLINE void store_raw(__m512 v, float *y, int64_t yplane, const int n)
{
    _mm256_storeu_ps(y, _mm512_castps512_ps256(v));
    if (n == 2)
        _mm256_storeu_ps(y + yplane, _mm512_extractf32x8_ps(v, 1));
}

/* Bias, residual and in-tile activation of one pixel's pair vector, stored
 * as its n (1 or 2) blocks' pixels at y and y + yplane. */
CNN_INLINE void store_pair(const cnn_epilogue *ep, __m512 acc, __m512 bias, float *y,
                       const float *res, int64_t yplane, const int n)
{
    __m512 v = _mm512_add_ps(acc, bias);
    if (res)
        v = _mm512_add_ps(v, load_pair(res, yplane, n));
    store_raw(act512(ep, v), y, yplane, n);
}

#endif
