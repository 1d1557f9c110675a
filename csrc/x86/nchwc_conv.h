/* The blocked (NCHW8c) convolution's shared SIMD parts: the in-tile
 * activations, the weight prefetch, the squeeze sums. The row descriptor
 * and the kernel tables are portable (csrc/ops/nchwc_rows.h), as is the
 * driver that calls them (csrc/ops/nchwc_drive.c).
 *
 * Include only from csrc/x86 C files, after their `#pragma GCC target`.
 * The AVX2 file supplies row kernels over output block pairs; the AVX512
 * file (nchwc_avx512.c) adds kernels over up to two pairs at once (16
 * output channels per zmm register).
 */
#ifndef CNN_X86_NCHWC_CONV_H
#define CNN_X86_NCHWC_CONV_H

#include <immintrin.h>

#include "../ops/eltwise.h"
#include "../ops/nchwc.h"
#include "../ops/nchwc_rows.h"
#include "vmath_avx2.h"

#define CNN_INLINE static inline __attribute__((always_inline))

/* The AVX2 tile lists (nchwc_tiles_avx2.c), 1 and 2 output blocks. */
void cnn_nchwc_tiles_o1_avx2(const crow *r, const cnn_ptile *t, int64_t count);
void cnn_nchwc_tiles_o2_avx2(const crow *r, const cnn_ptile *t, int64_t count);

/* The AVX2 depthwise driver with the activation rows of the caller's level
 * (the AVX-512 entry passes its zmm SiLU). */
cnn_status cnn_conv2d_nchwc_dw_act_avx2(const cnn_conv2d_nchwc *pk, int64_t n, const float *x,
                                        const float *residual, float *y, float *pool,
                                        int threads, cnn_act_row_fn act);

/* cnn_act_in_tile's activations (identity for the others). */
CNN_INLINE __m256 cnn_act_v(const cnn_epilogue *ep, __m256 v)
{
    switch (ep->act) {
    case CNN_ACT_RELU: return cnn_v_relu(v);
    case CNN_ACT_CLIP: return cnn_v_clip(v, _mm256_set1_ps(ep->alpha), _mm256_set1_ps(ep->beta));
    case CNN_ACT_LEAKY: return cnn_v_leaky(v, _mm256_set1_ps(ep->alpha));
    case CNN_ACT_HARDSWISH: return cnn_v_hardswish(v);
    case CNN_ACT_HARDSIGMOID:
        return cnn_v_hardsigmoid(v, _mm256_set1_ps(ep->alpha), _mm256_set1_ps(ep->beta));
    default: return v;
    }
}

/* Weights of the next output block pair into L2 while this pair computes:
 * in a network they are cold (late 1x1s: 0.9-1.6 MB of weights), and a
 * pair's first tile otherwise waits on all of them at once with no FMAs
 * to hide the misses behind. Each tile of a row takes an equal share
 * (cnn_prefetch_share) and spreads it over its input blocks, a few lines
 * per block (cnn_prefetch_slice): a burst at the tile's start filled the
 * miss queues and stalled the loads behind it (MNASNet 1152->192 @7x7
 * in-model: no prefetch 250 us, one burst per tile 245, spread 205; ONNX
 * Runtime 213). */
CNN_INLINE int64_t cnn_prefetch_share(int64_t left, int64_t tiles)
{
    return ((left + tiles - 1) / tiles + 63) & ~(int64_t)63;
}

CNN_INLINE void cnn_prefetch_slice(const char *pf, int64_t pfn, int64_t per, int64_t i)
{
    for (int64_t b = i * per; b < (i + 1) * per && b < pfn; b += 64)
        _mm_prefetch(pf + b, _MM_HINT_T1);
}

/* The lane sums of `pixels` 8-float pixels at y: a depthwise unit's share
 * of its blocks' plane means (the fused squeeze of a squeeze-excitation
 * block), taken while its rows are still in L1. */
CNN_INLINE __m256 cnn_nchwc_lane_sums(const float *y, int64_t pixels)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t p = 0;
    for (; p + 4 <= pixels; p += 4) {
        a0 = _mm256_add_ps(a0, _mm256_loadu_ps(y + p * 8));
        a1 = _mm256_add_ps(a1, _mm256_loadu_ps(y + (p + 1) * 8));
        a2 = _mm256_add_ps(a2, _mm256_loadu_ps(y + (p + 2) * 8));
        a3 = _mm256_add_ps(a3, _mm256_loadu_ps(y + (p + 3) * 8));
    }
    for (; p < pixels; p++)
        a0 = _mm256_add_ps(a0, _mm256_loadu_ps(y + p * 8));
    return _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
}

/* pool[q] = the mean over a plane of `pixels` pixels of block q, from its
 * `chunks` lane sums at partial + (q * chunks + c) * 8, added in chunk
 * order: the same sums whatever the thread count. */
CNN_INLINE void cnn_nchwc_pool_means(const float *partial, int64_t blocks, int64_t chunks,
                                     int64_t pixels, float *pool)
{
    const __m256 inv = _mm256_set1_ps(1.f / (float)pixels);
    for (int64_t q = 0; q < blocks; q++) {
        __m256 a = _mm256_setzero_ps();
        for (int64_t c = 0; c < chunks; c++)
            a = _mm256_add_ps(a, _mm256_loadu_ps(partial + (q * chunks + c) * 8));
        _mm256_storeu_ps(pool + q * 8, _mm256_mul_ps(a, inv));
    }
}

#endif
