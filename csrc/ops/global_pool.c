/* Global average / max pooling: x (NC, HW) -> y (NC), OpenMP over planes.
 * The scalar reference accumulates the sum in double. */
#include "internal.h"
#include "global_pool.h"

float cnn_global_sum_ref(const float *x, int64_t hw)
{
    double s = 0.0;
    for (int64_t i = 0; i < hw; i++)
        s += x[i];
    return (float)s;
}

float cnn_global_max_ref(const float *x, int64_t hw)
{
    float m = x[0];
    for (int64_t i = 1; i < hw; i++)
        m = x[i] > m ? x[i] : m;
    return m;
}

static cnn_status global_validate(int64_t nc, int64_t hw, const float *x,
                                  const float *y)
{
    int64_t t;
    if (!x || !y)
        return CNN_ERR_ARG;
    if (nc < 1 || hw < 1 || !cnn_mul_ok(nc, hw, &t))
        return CNN_ERR_SHAPE;
    return CNN_OK;
}

cnn_status cnn_global_avg_pool_f32(int64_t nc, int64_t hw, const float *x,
                                   float *y, int threads)
{
    cnn_status st = global_validate(nc, hw, x, y);
    if (st != CNN_OK)
        return st;
    const cnn_plane_fn sum = cnn_plat()->global_sum;
    if (threads < 1)
        threads = 1;
    #pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t q = 0; q < nc; q++)
        y[q] = sum(x + q * hw, hw) / (float)hw;
    return CNN_OK;
}

cnn_status cnn_global_max_pool_f32(int64_t nc, int64_t hw, const float *x,
                                   float *y, int threads)
{
    cnn_status st = global_validate(nc, hw, x, y);
    if (st != CNN_OK)
        return st;
    const cnn_plane_fn max = cnn_plat()->global_max;
    if (threads < 1)
        threads = 1;
    #pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t q = 0; q < nc; q++)
        y[q] = max(x + q * hw, hw);
    return CNN_OK;
}
