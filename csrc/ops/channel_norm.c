/* Layer normalisation across channels, per pixel (ConvNeXt's LayerNorm
 * over the channels-last axis, run on NCHW or blocked NCHW8c values):
 * y = (x - mean_c x) / sqrt(var_c x + eps) * gamma + beta.
 * The driver splits images x pixel ranges over the team; the scalar
 * kernels below are the oracles (two passes over the channels, in double). */
#include "channel_norm.h"
#include "eltwise.h"
#include "pool.h"

#define CN_TILE 64      /* pixels per tile of the plain kernel (stack sums) */
#define CN_CHUNK 256    /* pixels per parallel work item */

void cnn_channel_norm_plain_ref(int64_t c, int64_t hw, int64_t p0, int64_t p1, const float *x,
                                const float *gamma, const float *beta, float eps, float *y)
{
    double mean[CN_TILE], var[CN_TILE];
    for (int64_t t0 = p0; t0 < p1; t0 += CN_TILE) {
        const int64_t nt = p1 - t0 < CN_TILE ? p1 - t0 : CN_TILE;
        for (int64_t t = 0; t < nt; t++)
            mean[t] = var[t] = 0.0;
        for (int64_t k = 0; k < c; k++)
            for (int64_t t = 0; t < nt; t++)
                mean[t] += x[k * hw + t0 + t];
        for (int64_t t = 0; t < nt; t++)
            mean[t] /= (double)c;
        for (int64_t k = 0; k < c; k++)
            for (int64_t t = 0; t < nt; t++) {
                const double d = x[k * hw + t0 + t] - mean[t];
                var[t] += d * d;
            }
        for (int64_t t = 0; t < nt; t++)
            var[t] = 1.0 / sqrt(var[t] / (double)c + eps);
        for (int64_t k = 0; k < c; k++)
            for (int64_t t = 0; t < nt; t++)
                y[k * hw + t0 + t] = (float)((x[k * hw + t0 + t] - mean[t]) * var[t] * gamma[k] + beta[k]);
    }
}

void cnn_channel_norm_nchwc_ref(int64_t c, int64_t hw, int64_t p0, int64_t p1, const float *x,
                                const float *gamma, const float *beta, float eps, float *y)
{
    const int64_t cbs = ((c + CNN_NCHWC - 1) / CNN_NCHWC);
#define CN_AT(k, p) (((k) / CNN_NCHWC * hw + (p)) * CNN_NCHWC + (k) % CNN_NCHWC)
    for (int64_t p = p0; p < p1; p++) {
        double mean = 0.0, var = 0.0;
        for (int64_t k = 0; k < c; k++)
            mean += x[CN_AT(k, p)];
        mean /= (double)c;
        for (int64_t k = 0; k < c; k++) {
            const double d = x[CN_AT(k, p)] - mean;
            var += d * d;
        }
        const double r = 1.0 / sqrt(var / (double)c + eps);
        for (int64_t k = 0; k < cbs * CNN_NCHWC; k++)
            y[CN_AT(k, p)] = k < c ? (float)((x[CN_AT(k, p)] - mean) * r * gamma[k] + beta[k]) : 0.f;
    }
#undef CN_AT
}

typedef struct cn_job {
    cnn_channel_norm_fn fn;
    int64_t c, hw, chunks, per;
    const float *x, *gamma, *beta;
    float eps;
    float *y;
} cn_job;

/* Item i: image i / chunks, pixels of chunk i % chunks. */
static void cn_unit(void *ctx, int64_t i, int slot)
{
    (void)slot;
    const cn_job *jb = (const cn_job *)ctx;
    const int64_t img = i / jb->chunks, p0 = i % jb->chunks * CN_CHUNK;
    const int64_t p1 = p0 + CN_CHUNK < jb->hw ? p0 + CN_CHUNK : jb->hw;
    jb->fn(jb->c, jb->hw, p0, p1, jb->x + img * jb->per, jb->gamma, jb->beta, jb->eps,
           jb->y + img * jb->per);
}

cnn_status cnn_channel_norm_f32(int64_t n, int64_t c, int64_t hw, int blocked, const float *x,
                                const float *gamma, const float *beta, float eps, float *y,
                                int threads)
{
    int64_t per, t;
    if (!x || !gamma || !beta || !y || !(eps >= 0.f))
        return CNN_ERR_ARG;
    if (n < 1 || c < 1 || hw < 1)
        return CNN_ERR_SHAPE;
    const int64_t cp = blocked ? ((c + CNN_NCHWC - 1) / CNN_NCHWC) * CNN_NCHWC : c;
    if (!cnn_mul_ok(cp, hw, &per) || !cnn_mul_ok(per, n, &t))
        return CNN_ERR_SHAPE;
    const cnn_platform *plat = cnn_plat();
    const cnn_channel_norm_fn fn = blocked ? plat->nchwc_channel_norm : cnn_channel_norm_plain_ref;
    const int64_t chunks = (hw + CN_CHUNK - 1) / CN_CHUNK, items = n * chunks;
    /* small maps (the head's 1x1): one thread, the team costs more */
    const int team = per * n < 16384 ? 1 : cnn_team(threads, items);
    cn_job jb = {fn, c, hw, chunks, per, x, gamma, beta, eps, y};
    cnn_pool_for(team, items, NULL, cnn_threads_steal(), cn_unit, &jb);
    return CNN_OK;
}
