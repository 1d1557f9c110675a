/* linear: y (N,OUT) = act(x (N,IN) w^T + bias): validation, the scalar
 * reference, and dispatch to the AVX2 path (dot products or the GEMM). */
#include "conv2d.h"
#include "pool.h"

typedef struct lin_job {
    int64_t n, in, out;
    const float *x, *w, *bias;
    cnn_epilogue ep;
    float *y;
} lin_job;

/* Output feature o for every row. */
static void lin_unit(void *ctx, int64_t o, int slot)
{
    (void)slot;
    const lin_job *jb = (const lin_job *)ctx;
    const int64_t in = jb->in;
    const float *wo = jb->w + o * in;
    for (int64_t i = 0; i < jb->n; i++) {
        const float *xi = jb->x + i * in;
        float s = 0.f;
        for (int64_t t = 0; t < in; t++)
            s += xi[t] * wo[t];
        jb->y[i * jb->out + o] = cnn_act_scalar(&jb->ep, s + (jb->bias ? jb->bias[o] : 0.f));
    }
}

cnn_status cnn_linear_f32_ref(int64_t n, int64_t in, int64_t out, const float *x,
                              const float *w, const float *bias, cnn_epilogue ep, float *y,
                              int threads)
{
    lin_job jb = {n, in, out, x, w, bias, ep, y};
    cnn_pool_for(threads, out, NULL, cnn_threads_steal(), lin_unit, &jb);
    return CNN_OK;
}

cnn_status cnn_linear_f32(int64_t n, int64_t in, int64_t out, const float *x,
                          const float *w, const float *bias, cnn_epilogue ep, float *y,
                          int threads)
{
    int64_t t;
    if (n < 0 || in < 1 || out < 1)
        return CNN_ERR_SHAPE;
    if (!cnn_act_valid(&ep))
        return CNN_ERR_ARG;
    if (n == 0)
        return CNN_OK;
    if (!x || !w || !y)
        return CNN_ERR_ARG;
    if (!cnn_mul_ok(n, in, &t) || !cnn_mul_ok(n, out, &t) || !cnn_mul_ok(out, in, &t))
        return CNN_ERR_SHAPE;
    if (threads < 1)
        threads = 1;
    return cnn_plat()->linear(n, in, out, x, w, bias, ep, y, threads);
}
