/* Numerically stable softmax along the middle axis of x (OUTER, AXIS, INNER):
 * y = exp(x - max) / sum exp(x - max). INNER == 1 works row by row; otherwise
 * blocks of up to SM_BLOCK inner positions walk the axis together with
 * contiguous loads. the pool over rows / (outer, block) pairs. */
#include "internal.h"
#include "pool.h"

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

typedef struct sm_row_job {
    int64_t axis;
    const float *x;
    float *y;
} sm_row_job;

/* Row o (inner == 1). */
static void sm_row_unit(void *ctx, int64_t o, int slot)
{
    (void)slot;
    const sm_row_job *jb = (const sm_row_job *)ctx;
    const int64_t axis = jb->axis;
    softmax_row(jb->x + o * axis, jb->y + o * axis, axis);
}

typedef struct sm_blk_job {
    int64_t axis, inner, nblk;
    const float *x;
    float *y;
} sm_blk_job;

/* Block u % nblk of outer row u / nblk. */
static void sm_blk_unit(void *ctx, int64_t u, int slot)
{
    (void)slot;
    const sm_blk_job *jb = (const sm_blk_job *)ctx;
    const int64_t axis = jb->axis, inner = jb->inner, nblk = jb->nblk;
    const int64_t o = u / nblk, j0 = (u % nblk) * SM_BLOCK;
    const int64_t nb = inner - j0 < SM_BLOCK ? inner - j0 : SM_BLOCK;
    const int64_t off = o * axis * inner + j0;
    softmax_block(jb->x + off, jb->y + off, axis, inner, nb);
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
        sm_row_job jb = {axis, x, y};
        cnn_pool_for(threads, outer, NULL, cnn_threads_steal(), sm_row_unit, &jb);
        return CNN_OK;
    }
    const int64_t nblk = (inner + SM_BLOCK - 1) / SM_BLOCK;
    sm_blk_job jb = {axis, inner, nblk, x, y};
    cnn_pool_for(threads, outer * nblk, NULL, cnn_threads_steal(), sm_blk_unit, &jb);
    return CNN_OK;
}
