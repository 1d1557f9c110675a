/* linear: y (N,OUT) = act(x (N,IN) w^T + bias): validation, the scalar
 * reference, and dispatch to the AVX2 path (dot products or the GEMM). */
#include "conv2d.h"

cnn_status cnn_linear_f32_ref(int64_t n, int64_t in, int64_t out, const float *x,
                              const float *w, const float *bias, cnn_epilogue ep, float *y,
                              int threads)
{
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t o = 0; o < out; o++) {
        const float *wo = w + o * in;
        for (int64_t i = 0; i < n; i++) {
            const float *xi = x + i * in;
            float s = 0.f;
            for (int64_t t = 0; t < in; t++)
                s += xi[t] * wo[t];
            y[i * out + o] = cnn_act_scalar(&ep, s + (bias ? bias[o] : 0.f));
        }
    }
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
