/* conv2d: argument validation, the driver, and the direct reference kernel
 * (the oracle every fast path is tested against). */
#include <string.h>

#include "conv2d.h"
#include "pool.h"

/* Every dimension >= 1 (pads >= 0), groups divide c and k, oh/ow follow
 * (h + pt + pb - dh*(kh-1) - 1)/sh + 1, and every tensor size fits. */
cnn_status cnn_conv2d_check_params(const cnn_conv2d_params *p)
{
    if (!p)
        return CNN_ERR_ARG;
    if (!cnn_act_valid(&p->ep))
        return CNN_ERR_ARG;
    if (p->n < 1 || p->c < 1 || p->h < 1 || p->w < 1 || p->k < 1 || p->kh < 1 ||
        p->kw < 1 || p->sh < 1 || p->sw < 1 || p->dh < 1 || p->dw < 1 || p->groups < 1 ||
        p->oh < 1 || p->ow < 1 || p->pt < 0 || p->pl < 0 || p->pb < 0 || p->pr < 0)
        return CNN_ERR_SHAPE;
    if (p->c % p->groups || p->k % p->groups)
        return CNN_ERR_SHAPE;
    int64_t ekh, ekw, ph, pw, t;
    if (!cnn_mul_ok(p->dh, p->kh - 1, &ekh) || !cnn_mul_ok(p->dw, p->kw - 1, &ekw) ||
        __builtin_add_overflow(p->h, p->pt, &ph) || __builtin_add_overflow(ph, p->pb, &ph) ||
        __builtin_add_overflow(p->w, p->pl, &pw) || __builtin_add_overflow(pw, p->pr, &pw))
        return CNN_ERR_SHAPE;
    if (ph < ekh + 1 || pw < ekw + 1)
        return CNN_ERR_SHAPE;
    if (p->oh != (ph - ekh - 1) / p->sh + 1 || p->ow != (pw - ekw - 1) / p->sw + 1)
        return CNN_ERR_SHAPE;
    if (!cnn_mul_ok(p->n, p->c, &t) || !cnn_mul_ok(t, p->h, &t) || !cnn_mul_ok(t, p->w, &t) ||
        !cnn_mul_ok(p->k, p->c / p->groups, &t) || !cnn_mul_ok(t, p->kh, &t) ||
        !cnn_mul_ok(t, p->kw, &t) || !cnn_mul_ok(p->n, p->k, &t) ||
        !cnn_mul_ok(t, p->oh, &t) || !cnn_mul_ok(t, p->ow, &t))
        return CNN_ERR_SHAPE;
    return CNN_OK;
}

static cnn_status conv2d_check(const cnn_conv2d_params *p, const float *x, const float *w,
                               const float *y)
{
    if (!p || !x || !w || !y)
        return CNN_ERR_ARG;
    return cnn_conv2d_check_params(p);
}

/* First/one-past-last output column whose input column o*s - pad + off lies
 * in [0, w). */
static inline void valid_cols(int64_t w, int64_t ow, int64_t s, int64_t pad, int64_t off,
                              int64_t *lo, int64_t *hi)
{
    int64_t v = pad - off;  /* need o*s >= v */
    *lo = v <= 0 ? 0 : (v + s - 1) / s;
    int64_t u = w - 1 + pad - off;  /* need o*s <= u */
    *hi = u < 0 ? 0 : u / s + 1;
    if (*hi > ow)
        *hi = ow;
    if (*lo > *hi)
        *lo = *hi;
}

typedef struct conv_job {
    const cnn_conv2d_params *p;
    const float *x, *w, *bias, *residual;
    float *y;
} conv_job;

/* Output plane nk (image nk / k, output channel nk % k). */
static void conv_unit(void *ctx, int64_t nk, int slot)
{
    (void)slot;
    const conv_job *jb = (const conv_job *)ctx;
    const cnn_conv2d_params *p = jb->p;
    const float *x = jb->x, *w = jb->w, *bias = jb->bias, *residual = jb->residual;
    float *y = jb->y;
    const int64_t cg = p->c / p->groups, kg = p->k / p->groups;
    const int64_t hw = p->h * p->w, ohw = p->oh * p->ow;
    const int64_t img = nk / p->k, ko = nk % p->k, g = ko / kg;
    float *yp = y + nk * ohw;
    memset(yp, 0, (size_t)ohw * sizeof(float));
    for (int64_t ci = 0; ci < cg; ci++) {
        const float *xp = x + (img * p->c + g * cg + ci) * hw;
        const float *wp = w + (ko * cg + ci) * p->kh * p->kw;
        for (int64_t ky = 0; ky < p->kh; ky++) {
            for (int64_t kx = 0; kx < p->kw; kx++) {
                const float wv = wp[ky * p->kw + kx];
                int64_t lo, hi;
                valid_cols(p->w, p->ow, p->sw, p->pl, kx * p->dw, &lo, &hi);
                for (int64_t oy = 0; oy < p->oh; oy++) {
                    const int64_t iy = oy * p->sh - p->pt + ky * p->dh;
                    if (iy < 0 || iy >= p->h)
                        continue;
                    const int64_t base = iy * p->w - p->pl + kx * p->dw;
                    float *yr = yp + oy * p->ow;
                    for (int64_t ox = lo; ox < hi; ox++)
                        yr[ox] += wv * xp[base + ox * p->sw];
                }
            }
        }
    }
    const float b = bias ? bias[ko] : 0.f;
    const float *rp = residual ? residual + nk * ohw : NULL;
    for (int64_t i = 0; i < ohw; i++) {
        float v = yp[i] + b;
        if (rp)
            v += rp[i];
        yp[i] = cnn_act_scalar(&p->ep, v);
    }
}

/* Direct convolution: one output plane (image, out channel) per iteration,
 * accumulated tap by tap over in-bounds rows/columns (zero padding skipped),
 * then bias, residual and the activation. */
static void conv2d_ref(const cnn_conv2d_params *p, const float *x, const float *w,
                       const float *bias, const float *residual, float *y, int threads)
{
    conv_job jb = {p, x, w, bias, residual, y};
    cnn_pool_for(threads, p->n * p->k, NULL, cnn_threads_steal(), conv_unit, &jb);
}

cnn_status cnn_conv2d_direct_f32_ref(const cnn_conv2d_params *p, const float *x, const float *w,
                                     const float *bias, const float *residual, float *y,
                                     int threads)
{
    conv2d_ref(p, x, w, bias, residual, y, threads);
    return CNN_OK;
}

cnn_status cnn_conv2d_f32_ref(const cnn_conv2d_params *p, const float *x, const float *w,
                              const float *bias, const float *residual, float *y,
                              int threads)
{
    cnn_status st = conv2d_check(p, x, w, y);
    if (st != CNN_OK)
        return st;
    conv2d_ref(p, x, w, bias, residual, y, threads < 1 ? 1 : threads);
    return CNN_OK;
}

cnn_status cnn_conv2d_f32(const cnn_conv2d_params *p, const float *x, const float *w,
                          const float *bias, const float *residual, float *y, int threads)
{
    cnn_status st = conv2d_check(p, x, w, y);
    if (st != CNN_OK)
        return st;
    if (threads < 1)
        threads = 1;
    return cnn_plat()->conv2d(p, x, w, bias, residual, y, threads);
}
