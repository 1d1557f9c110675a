/* The blocked (NCHW8c) convolution's shared parts: the row descriptor the
 * tile kernels read, the in-tile activations, the weight prefetch, and the
 * driver (csrc/x86/nchwc_avx2.c) that cuts the output into units for the
 * threads and calls an ISA's row kernels through a table.
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
#include "vmath_avx2.h"

#define CNN_INLINE static inline __attribute__((always_inline))

/* One output row (or, for a flattened 1x1, a run of pixels) of one image. */
typedef struct crow {
    const float *x;     /* the image's first input block plane */
    int64_t xplane;     /* floats per input block plane: h * w * cb */
    int64_t xrow;       /* floats per input row: w * cb */
    int64_t icb, kh, kw, sw, dh, dw;
    int64_t ibatch;     /* input blocks per pass of a wide 1x1 (pw rows) */
    int64_t nb;         /* output blocks the wide kernels store (1..4) */
    int pf_next;        /* wide 1x1: prefetch the next tile's input */
    int64_t iy0;        /* input row of tap ky = 0 */
    int64_t ky0, ky1;   /* taps whose input row is inside the image */
    const float *w;     /* packed weights of the tile's first output block */
    int64_t wob;        /* floats per output block of packed weights */
    const float *bias;  /* at the tile's first output block */
    const float *res;   /* residual at (first block, this row's pixel 0), or NULL */
    float *y;           /* output at (first block, this row's pixel 0) */
    int64_t yplane;     /* floats per output block plane: oh * ow * 8 */
    const cnn_epilogue *ep;
    const char *pf;     /* weights the next output block pair will read, or NULL */
    int64_t pf_bytes;
} crow;

/* Pixels [x0, x1) of a row: the general kind also gets the interior
 * columns [in_lo, in_hi), the left padding and the input width. */
typedef void (*cnn_row_fn)(const crow *, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t);
typedef void (*cnn_pw_fn)(const crow *, int64_t, int64_t);
typedef void (*cnn_span_fn)(const crow *, int64_t, int64_t, int64_t);

/* Row kernel kinds (pick_rows): blocked (C8) or NCHW (C1) input, with the
 * kernel size and stride fixed at compile time where named. */
enum { CNN_ROW_C8, CNN_ROW_C1, CNN_ROW_C8_K1S2, CNN_ROW_C8_K3S1, CNN_ROW_C8_K3S2,
       CNN_ROW_C1_S2, CNN_ROW_C1_K3S2, CNN_ROW_KINDS };

/* An ISA's row kernels, indexed by the output blocks a call covers, less
 * one (the AVX2 table: 1 or 2 blocks, a pair; AVX-512: up to 4, two
 * pairs). A NULL entry: the ISA has no kernel for that many blocks, and
 * the driver falls back to the AVX2 pairs. */
typedef struct cnn_nchwc_rows {
    cnn_row_fn row[CNN_ROW_KINDS][4];
    cnn_pw_fn pw[4];            /* 1x1 stride 1 over the flattened image */
    cnn_span_fn span[2][4];     /* [stride 2][blocks - 1]: small 3x3 planes */
} cnn_nchwc_rows;

cnn_status cnn_nchwc_conv_drive(const struct cnn_conv2d_nchwc *pk, int64_t n, const float *x,
                                const float *residual, float *y, int threads,
                                const cnn_nchwc_rows *wide);

/* The activations applied in registers as a tile is stored: short enough
 * to inline in every tile variant. The others (exp-based: sigmoid, SiLU,
 * tanh, ELU, GELU) would be calls, and a call clobbers every vector
 * register, so inside a tile's epilogue it spilled and reloaded the tile's
 * other accumulators around each vector (40->240 @28x28 1x1 + SiLU: SiLU
 * cost 0.69 ns per output, 0.30 in a separate pass). They run instead over
 * each stored row, while it is in L1/L2, by the activation pass's own
 * loop (cnn_nchwc_act_row). */
CNN_INLINE int cnn_act_in_tile(int act)
{
    return act == CNN_ACT_NONE || act == CNN_ACT_RELU || act == CNN_ACT_CLIP ||
           act == CNN_ACT_LEAKY || act == CNN_ACT_HARDSWISH || act == CNN_ACT_HARDSIGMOID;
}

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
