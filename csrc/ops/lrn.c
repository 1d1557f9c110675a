/* Local response normalisation across channels (AlexNet / ONNX LRN):
 * x (N,C,HW) -> y = x / (k + alpha/size * sum x^2)^beta, the sum over
 * channels c - floor((size-1)/2) .. c + ceil((size-1)/2) clipped to [0, C).
 * (PyTorch's window for an even size is the mirror image; the Python layer
 * gets it by reversing the channel axis.) The pool over N*C planes; each
 * element sums its window directly, so no running-sum cancellation. */
#include "internal.h"
#include "pool.h"

typedef struct lrn_job {
    int64_t c, hw, before, after;
    float a, beta, k;
    int b075;
    const float *x;
    float *y;
} lrn_job;

/* Plane q (channel q % c). */
static void lrn_unit(void *ctx, int64_t q, int slot)
{
    (void)slot;
    const lrn_job *jb = (const lrn_job *)ctx;
    const int64_t c = jb->c, hw = jb->hw, before = jb->before, after = jb->after;
    const float a = jb->a, beta = jb->beta, k = jb->k, *x = jb->x;
    const int b075 = jb->b075;
    float *y = jb->y;
    const int64_t ci = q % c, img = q - ci;
    const int64_t c0 = ci - before < 0 ? 0 : ci - before;
    const int64_t c1 = ci + after >= c ? c - 1 : ci + after;
    const float *xw = x + (img + c0) * hw;
    const float *xp = x + q * hw;
    float *yp = y + q * hw;
    for (int64_t i = 0; i < hw; i++) {
        float s = 0.f;
        for (int64_t j = 0; j <= c1 - c0; j++) {
            float v = xw[j * hw + i];
            s += v * v;
        }
        float d = k + a * s;
        float r;
        if (b075) {         /* d^-0.75 = d^-0.5 * d^-0.25 */
            float is = 1.f / sqrtf(d);
            r = is * sqrtf(is);
        } else {
            r = powf(d, -beta);
        }
        yp[i] = xp[i] * r;
    }
}

cnn_status cnn_lrn_f32(int64_t n, int64_t c, int64_t hw, int64_t size,
                       float alpha, float beta, float k, const float *x,
                       float *y, int threads)
{
    int64_t nc, total;
    if (!x || !y)
        return CNN_ERR_ARG;
    if (n < 1 || c < 1 || hw < 1 || size < 1 || !cnn_mul_ok(n, c, &nc) ||
        !cnn_mul_ok(nc, hw, &total))
        return CNN_ERR_SHAPE;
    if (x == y)
        return CNN_ERR_ARG;     /* the window reads neighbouring channels */
    if (threads < 1)
        threads = 1;
    const int64_t before = (size - 1) / 2, after = size / 2;   /* ceil((size-1)/2) */
    const float a = alpha / (float)size;
    const int b075 = beta == 0.75f;
    lrn_job jb = {c, hw, before, after, a, beta, k, b075, x, y};
    cnn_pool_for(threads, nc, NULL, cnn_threads_steal(), lrn_unit, &jb);
    return CNN_OK;
}
