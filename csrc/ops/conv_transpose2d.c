/* conv_transpose2d (the adjoint of conv2d): validation, a direct scalar
 * reference, and the GEMM + col2im path:
 *     Col (K/g*kh*kw, H*W) = W_g^T (K/g*kh*kw, C/g) x X_g (C/g, H*W)
 * then every column is scatter-added into the output (col2im). */
#include <string.h>

#include "gemm.h"
#include "pool.h"

/* Columns of X per GEMM: bounds the Col workspace to ~64 MiB. */
#define CT_COL_LIMIT ((int64_t)1 << 24)

static cnn_status ct_check(const cnn_conv_transpose2d_params *p, const float *x,
                           const float *w, const float *y)
{
    if (!p || !x || !w || !y)
        return CNN_ERR_ARG;
    if (p->n < 1 || p->c < 1 || p->h < 1 || p->w < 1 || p->k < 1 || p->kh < 1 ||
        p->kw < 1 || p->sh < 1 || p->sw < 1 || p->dh < 1 || p->dw < 1 || p->groups < 1 ||
        p->oh < 1 || p->ow < 1 || p->pt < 0 || p->pl < 0 || p->pb < 0 || p->pr < 0)
        return CNN_ERR_SHAPE;
    if (p->c % p->groups || p->k % p->groups)
        return CNN_ERR_SHAPE;
    int64_t t, fh, fw;
    /* Full (unpadded) extent: (h-1)*sh + dh*(kh-1) + 1. */
    if (!cnn_mul_ok(p->h - 1, p->sh, &fh) || !cnn_mul_ok(p->dh, p->kh - 1, &t) ||
        __builtin_add_overflow(fh, t + 1, &fh) || !cnn_mul_ok(p->w - 1, p->sw, &fw) ||
        !cnn_mul_ok(p->dw, p->kw - 1, &t) || __builtin_add_overflow(fw, t + 1, &fw))
        return CNN_ERR_SHAPE;
    /* output_padding = o - (full - pads), 0 <= op < max(stride, dilation). */
    int64_t oph = p->oh - (fh - p->pt - p->pb), opw = p->ow - (fw - p->pl - p->pr);
    if (oph < 0 || opw < 0 || oph >= (p->sh > p->dh ? p->sh : p->dh) ||
        opw >= (p->sw > p->dw ? p->sw : p->dw))
        return CNN_ERR_SHAPE;
    if (!cnn_mul_ok(p->n, p->c, &t) || !cnn_mul_ok(t, p->h, &t) || !cnn_mul_ok(t, p->w, &t) ||
        !cnn_mul_ok(p->c, p->k / p->groups, &t) || !cnn_mul_ok(t, p->kh, &t) ||
        !cnn_mul_ok(t, p->kw, &t) || !cnn_mul_ok(p->n, p->k, &t) ||
        !cnn_mul_ok(t, p->oh, &t) || !cnn_mul_ok(t, p->ow, &t))
        return CNN_ERR_SHAPE;
    return CNN_OK;
}

typedef struct fill_job {
    const cnn_conv_transpose2d_params *p;
    const float *bias;
    float *y;
} fill_job;

/* Plane nk: the bias of its channel. */
static void fill_unit(void *ctx, int64_t nk, int slot)
{
    (void)slot;
    const fill_job *jb = (const fill_job *)ctx;
    const cnn_conv_transpose2d_params *p = jb->p;
    const float *bias = jb->bias;
    float *y = jb->y;
    const int64_t ohw = p->oh * p->ow;
    float b = bias ? bias[nk % p->k] : 0.f, *yp = y + nk * ohw;
    for (int64_t i = 0; i < ohw; i++)
        yp[i] = b;
}

static void fill_bias(const cnn_conv_transpose2d_params *p, const float *bias, float *y,
                      int threads)
{
    fill_job jb = {p, bias, y};
    cnn_pool_for(threads, p->n * p->k, NULL, cnn_threads_steal(), fill_unit, &jb);
}

typedef struct ct_job {
    const cnn_conv_transpose2d_params *p;
    const float *x, *w;
    float *y;
} ct_job;

/* Plane nk (image nk / k, output channel nk % k). */
static void ct_unit(void *ctx, int64_t nk, int slot)
{
    (void)slot;
    const ct_job *jb = (const ct_job *)ctx;
    const cnn_conv_transpose2d_params *p = jb->p;
    const float *x = jb->x, *w = jb->w;
    float *y = jb->y;
    const int64_t cg = p->c / p->groups, kg = p->k / p->groups;
    const int64_t hw = p->h * p->w, ohw = p->oh * p->ow, khw = p->kh * p->kw;
    const int64_t img = nk / p->k, ko = nk % p->k, g = ko / kg, kl = ko % kg;
    float *yp = y + nk * ohw;
    for (int64_t ci = 0; ci < cg; ci++) {
        const int64_t c = g * cg + ci;
        const float *xp = x + (img * p->c + c) * hw;
        const float *wp = w + (c * kg + kl) * khw;
        for (int64_t iy = 0; iy < p->h; iy++) {
            for (int64_t ky = 0; ky < p->kh; ky++) {
                const int64_t oy = iy * p->sh - p->pt + ky * p->dh;
                if (oy < 0 || oy >= p->oh)
                    continue;
                for (int64_t ix = 0; ix < p->w; ix++) {
                    const float xv = xp[iy * p->w + ix];
                    for (int64_t kx = 0; kx < p->kw; kx++) {
                        const int64_t ox = ix * p->sw - p->pl + kx * p->dw;
                        if (ox >= 0 && ox < p->ow)
                            yp[oy * p->ow + ox] += xv * wp[ky * p->kw + kx];
                    }
                }
            }
        }
    }
}

/* Direct scatter: each (image, out channel) plane gathers every input pixel's
 * contribution, so threads write disjoint planes. */
static void ct_ref(const cnn_conv_transpose2d_params *p, const float *x, const float *w,
                   float *y, int threads)
{
    ct_job jb = {p, x, w, y};
    cnn_pool_for(threads, p->n * p->k, NULL, cnn_threads_steal(), ct_unit, &jb);
}

/* y plane of one out channel += its kh*kw rows of Col, for input pixels
 * [j0, j0+nc) (row-major over H x W). */
static void col2im_plane(const cnn_conv_transpose2d_params *p, const float *col, int64_t ldc,
                         int64_t j0, int64_t nc, float *yp)
{
    for (int64_t ky = 0; ky < p->kh; ky++) {
        for (int64_t kx = 0; kx < p->kw; kx++, col += ldc) {
            int64_t iy = j0 / p->w, ix = j0 % p->w;
            for (int64_t t = 0; t < nc;) {
                const int64_t run = nc - t < p->w - ix ? nc - t : p->w - ix;
                const int64_t oy = iy * p->sh - p->pt + ky * p->dh;
                if (oy >= 0 && oy < p->oh) {
                    float *yr = yp + oy * p->ow;
                    for (int64_t u = 0; u < run; u++) {
                        const int64_t ox = (ix + u) * p->sw - p->pl + kx * p->dw;
                        if (ox >= 0 && ox < p->ow)
                            yr[ox] += col[t + u];
                    }
                }
                t += run;
                ix = 0;
                iy++;
            }
        }
    }
}

typedef struct col2im_job {
    const cnn_conv_transpose2d_params *p;
    const float *col;
    int64_t j0, nc, ohw;
    float *yg;
} col2im_job;

/* Output channel ko of the group: its rows of Col into its plane. */
static void col2im_unit(void *ctx, int64_t ko, int slot)
{
    (void)slot;
    const col2im_job *jb = (const col2im_job *)ctx;
    const cnn_conv_transpose2d_params *p = jb->p;
    const int64_t j0 = jb->j0, nc = jb->nc, ohw = jb->ohw;
    col2im_plane(p, jb->col + ko * p->kh * p->kw * nc, nc, j0, nc, jb->yg + ko * ohw);
}

static cnn_status ct_gemm(const cnn_conv_transpose2d_params *p, const float *x,
                          const float *w, float *y, int threads)
{
    const int64_t g = p->groups, cg = p->c / g, kg = p->k / g;
    const int64_t hw = p->h * p->w, ohw = p->oh * p->ow, rows = kg * p->kh * p->kw;
    int64_t chunk = CT_COL_LIMIT / rows;
    if (chunk < 16)
        chunk = 16;
    if (chunk > hw)
        chunk = hw;
    int64_t size;
    if (!cnn_mul_ok(rows, chunk, &size))
        return CNN_ERR_OOM;
    float *col = cnn_alloc_floats(size);
    if (!col)
        return CNN_ERR_OOM;
    const int team = kg < threads ? (int)kg : threads;
    for (int64_t img = 0; img < p->n; img++) {
        for (int64_t gi = 0; gi < g; gi++) {
            for (int64_t j0 = 0; j0 < hw; j0 += chunk) {
                const int64_t nc = hw - j0 < chunk ? hw - j0 : chunk;
                cnn_gemm_job j = cnn_gemm_job_plain();
                j.m = rows;
                j.n = nc;
                j.k = cg;
                j.trans_a = 1;
                j.a = w + gi * cg * rows;
                j.lda = rows;
                j.b = x + (img * p->c + gi * cg) * hw + j0;
                j.ldb = hw;
                j.c = col;
                j.ldc = nc;
                cnn_status st = cnn_gemm_jobs_f32(&j, 1, threads);
                if (st != CNN_OK) {
                    free(col);
                    return st;
                }
                float *yg = y + (img * p->k + gi * kg) * ohw;
                col2im_job jb = {p, col, j0, nc, ohw, yg};
                cnn_pool_for(team, kg, NULL, cnn_threads_steal(), col2im_unit, &jb);
            }
        }
    }
    free(col);
    return CNN_OK;
}

cnn_status cnn_conv_transpose2d_f32(const cnn_conv_transpose2d_params *p, const float *x,
                                    const float *w, const float *bias, float *y, int threads)
{
    cnn_status st = ct_check(p, x, w, y);
    if (st != CNN_OK)
        return st;
    if (threads < 1)
        threads = 1;
    fill_bias(p, bias, y, threads);
    if (cnn_plat()->gemm_fast)
        return ct_gemm(p, x, w, y, threads);
    ct_ref(p, x, w, y, threads);
    return CNN_OK;
}
