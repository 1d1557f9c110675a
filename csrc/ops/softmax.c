/* Numerically stable softmax along the middle axis of x (OUTER, AXIS, INNER):
 * y = exp(x - max) / sum exp(x - max). INNER == 1 works row by row; otherwise
 * blocks of up to SM_BLOCK inner positions walk the axis together with
 * contiguous loads. OpenMP over rows / (outer, block) pairs. */
#include "internal.h"

#define SM_BLOCK 256

static void softmax_row(const float *x, float *y, int64_t n)
{
    float m = x[0];
    for (int64_t i = 1; i < n; i++)
        m = x[i] > m ? x[i] : m;
    float s = 0.f;
    for (int64_t i = 0; i < n; i++) {
        float e = expf(x[i] - m);
        y[i] = e;
        s += e;
    }
    const float r = 1.f / s;
    for (int64_t i = 0; i < n; i++)
        y[i] *= r;
}

/* Block of nb <= SM_BLOCK inner positions starting at x, row stride `inner`. */
static void softmax_block(const float *x, float *y, int64_t axis, int64_t inner,
                          int64_t nb)
{
    float m[SM_BLOCK], s[SM_BLOCK];
    for (int64_t j = 0; j < nb; j++) {
        m[j] = x[j];
        s[j] = 0.f;
    }
    for (int64_t a = 1; a < axis; a++) {
        const float *xr = x + a * inner;
        for (int64_t j = 0; j < nb; j++)
            m[j] = xr[j] > m[j] ? xr[j] : m[j];
    }
    for (int64_t a = 0; a < axis; a++) {
        const float *xr = x + a * inner;
        float *yr = y + a * inner;
        for (int64_t j = 0; j < nb; j++) {
            float e = expf(xr[j] - m[j]);
            yr[j] = e;
            s[j] += e;
        }
    }
    for (int64_t j = 0; j < nb; j++)
        s[j] = 1.f / s[j];
    for (int64_t a = 0; a < axis; a++) {
        float *yr = y + a * inner;
        for (int64_t j = 0; j < nb; j++)
            yr[j] *= s[j];
    }
}

cnn_status cnn_softmax_f32(int64_t outer, int64_t axis, int64_t inner,
                           const float *x, float *y, int threads)
{
    int64_t t;
    if (!x || !y)
        return CNN_ERR_ARG;
    if (outer < 1 || axis < 1 || inner < 1 || !cnn_mul_ok(outer, axis, &t) ||
        !cnn_mul_ok(t, inner, &t))
        return CNN_ERR_SHAPE;
    if (threads < 1)
        threads = 1;
    if (inner == 1) {
        #pragma omp parallel for num_threads(threads) schedule(static)
        for (int64_t o = 0; o < outer; o++)
            softmax_row(x + o * axis, y + o * axis, axis);
        return CNN_OK;
    }
    const int64_t nblk = (inner + SM_BLOCK - 1) / SM_BLOCK;
    #pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t u = 0; u < outer * nblk; u++) {
        const int64_t o = u / nblk, j0 = (u % nblk) * SM_BLOCK;
        const int64_t nb = inner - j0 < SM_BLOCK ? inner - j0 : SM_BLOCK;
        const int64_t off = o * axis * inner + j0;
        softmax_block(x + off, y + off, axis, inner, nb);
    }
    return CNN_OK;
}
