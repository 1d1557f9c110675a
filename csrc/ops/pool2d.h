/* Private to pool2d.c and x86/pool2d_avx2.c: window arithmetic and the AVX2
 * entry points. Coordinates: an output index o covers input taps
 * o*s - pad + j*d for j in [0, k). */
#ifndef CNN_POOL2D_H
#define CNN_POOL2D_H

#include "cnnengine.h"

static inline int64_t cnn_floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

/* Taps j in [0, k) with lo <= a + j*d < hi are j in [*j0, *j1); the count
 * is max(0, *j1 - *j0). d >= 1. */
static inline void cnn_pool_taps(int64_t a, int64_t k, int64_t d, int64_t lo,
                                 int64_t hi, int64_t *j0, int64_t *j1)
{
    int64_t s = a >= lo ? 0 : -cnn_floordiv(a - lo, d);
    int64_t e = hi - 1 - a < 0 ? 0 : cnn_floordiv(hi - 1 - a, d) + 1;
    *j0 = s;
    *j1 = e > k ? k : e;
}

static inline int64_t cnn_pool_count(int64_t a, int64_t k, int64_t d,
                                     int64_t lo, int64_t hi)
{
    int64_t j0, j1;
    cnn_pool_taps(a, k, d, lo, hi, &j0, &j1);
    return j1 > j0 ? j1 - j0 : 0;
}

/* The scalar loops (oracles); validated arguments, threads >= 1. */
cnn_status cnn_max_pool2d_f32_ref(const cnn_pool2d_params *p, const float *x, float *y,
                                  int threads);
cnn_status cnn_avg_pool2d_f32_ref(const cnn_pool2d_params *p, const float *x, float *y,
                                  int threads);
cnn_status cnn_max_pool2d_f32_avx2(const cnn_pool2d_params *p, const float *x,
                                   float *y, int threads);
cnn_status cnn_avg_pool2d_f32_avx2(const cnn_pool2d_params *p, const float *x,
                                   float *y, int threads);

#endif
