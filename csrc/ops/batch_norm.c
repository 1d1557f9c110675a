/* Inference batch norm: x (N,C,HW) -> y = x * scale[c] + shift[c] with
 * scale = gamma / sqrt(var + eps), shift = beta - mean * scale (computed
 * once, in double), then one streaming pass, the pool over N*C planes.
 * gamma / beta may be NULL (1 / 0). In place (y == x) is allowed. */
#include "internal.h"
#include "pool.h"

typedef struct bn_job {
    int64_t c, hw;
    const float *x, *scale, *shift;
    float *y;
} bn_job;

/* Plane q (channel q % c). */
static void bn_unit(void *ctx, int64_t q, int slot)
{
    (void)slot;
    const bn_job *jb = (const bn_job *)ctx;
    const int64_t c = jb->c, hw = jb->hw;
    const float *x = jb->x, *scale = jb->scale, *shift = jb->shift;
    float *y = jb->y;
    const float a = scale[q % c], b = shift[q % c];
    const float *xp = x + q * hw;
    float *yp = y + q * hw;
    #pragma omp simd
    for (int64_t i = 0; i < hw; i++)
        yp[i] = xp[i] * a + b;
}

cnn_status cnn_batch_norm_f32(int64_t n, int64_t c, int64_t hw,
                              const float *x, const float *mean,
                              const float *var, const float *gamma,
                              const float *beta, float eps, float *y,
                              int threads)
{
    int64_t nc, total;
    if (!x || !y || !mean || !var)
        return CNN_ERR_ARG;
    if (n < 1 || c < 1 || hw < 1 || !cnn_mul_ok(n, c, &nc) || !cnn_mul_ok(nc, hw, &total))
        return CNN_ERR_SHAPE;
    if (threads < 1)
        threads = 1;
    float *ss = cnn_alloc_floats(2 * c);
    if (!ss)
        return CNN_ERR_OOM;
    float *scale = ss, *shift = ss + c;
    for (int64_t i = 0; i < c; i++) {
        double s = (gamma ? (double)gamma[i] : 1.0) / sqrt((double)var[i] + (double)eps);
        scale[i] = (float)s;
        shift[i] = (float)((beta ? (double)beta[i] : 0.0) - (double)mean[i] * s);
    }
    bn_job jb = {c, hw, x, scale, shift, y};
    cnn_pool_for(threads, nc, NULL, cnn_threads_steal(), bn_unit, &jb);
    free(ss);
    return CNN_OK;
}
