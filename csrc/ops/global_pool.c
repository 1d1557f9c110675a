/* Global average / max pooling: x (NC, HW) -> y (NC), the pool over planes.
 * The scalar reference accumulates the sum in double. */
#include "internal.h"
#include "global_pool.h"
#include "pool.h"

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

typedef struct gavg_job {
    cnn_plane_fn sum;
    int64_t hw;
    const float *x;
    float *y;
} gavg_job;

/* Plane q. */
static void gavg_unit(void *ctx, int64_t q, int slot)
{
    (void)slot;
    const gavg_job *jb = (const gavg_job *)ctx;
    const int64_t hw = jb->hw;
    jb->y[q] = jb->sum(jb->x + q * hw, hw) / (float)hw;
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
    gavg_job jb = {sum, hw, x, y};
    cnn_pool_for(threads, nc, NULL, cnn_threads_steal(), gavg_unit, &jb);
    return CNN_OK;
}

typedef struct gmax_job {
    cnn_plane_fn max;
    int64_t hw;
    const float *x;
    float *y;
} gmax_job;

/* Plane q. */
static void gmax_unit(void *ctx, int64_t q, int slot)
{
    (void)slot;
    const gmax_job *jb = (const gmax_job *)ctx;
    const int64_t hw = jb->hw;
    jb->y[q] = jb->max(jb->x + q * hw, hw);
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
    gmax_job jb = {max, hw, x, y};
    cnn_pool_for(threads, nc, NULL, cnn_threads_steal(), gmax_unit, &jb);
    return CNN_OK;
}
