/* 2-D padding of x (NC,H,W) -> y (NC, H+pt+pb, W+pl+pr).
 * constant: `value` outside; reflect: mirror without repeating the edge
 * (NumPy/PyTorch "reflect", needs every pad < its dim); edge: replicate the
 * border. the pool over output rows. */
#include <string.h>

#include "internal.h"
#include "pool.h"

/* Source index of padded coordinate i (may be outside [0, n)). */
static inline int64_t pad_src(int64_t i, int64_t n, int mode)
{
    if (i >= 0 && i < n)
        return i;
    if (mode == CNN_PAD_EDGE)
        return i < 0 ? 0 : n - 1;
    return i < 0 ? -i : 2 * (n - 1) - i;    /* reflect; pad < n keeps it in range */
}

typedef struct pad_job {
    int64_t h, w, oh, ow, pt, pl, pr;
    int mode;
    float value;
    const float *x;
    float *y;
} pad_job;

/* Output row r (plane r / oh). */
static void pad_unit(void *ctx, int64_t r, int slot)
{
    (void)slot;
    const pad_job *jb = (const pad_job *)ctx;
    const int64_t h = jb->h, w = jb->w, oh = jb->oh, ow = jb->ow, pt = jb->pt, pl = jb->pl, pr = jb->pr;
    const int mode = jb->mode;
    const float value = jb->value, *x = jb->x;
    float *y = jb->y;
    const int64_t q = r / oh, sy = r % oh - pt;
    float *yr = y + r * ow;
    if (mode == CNN_PAD_CONSTANT && (sy < 0 || sy >= h || w == 0)) {
        for (int64_t j = 0; j < ow; j++)
            yr[j] = value;
        return;
    }
    const float *xr = x + (q * h + pad_src(sy, h, mode)) * w;
    for (int64_t j = 0; j < pl; j++)
        yr[j] = mode == CNN_PAD_CONSTANT ? value : xr[pad_src(j - pl, w, mode)];
    memcpy(yr + pl, xr, (size_t)w * sizeof(float));
    for (int64_t j = 0; j < pr; j++)
        yr[pl + w + j] = mode == CNN_PAD_CONSTANT ? value : xr[pad_src(w + j, w, mode)];
}

cnn_status cnn_pad_f32(int64_t nc, int64_t h, int64_t w, int64_t pt,
                       int64_t pl, int64_t pb, int64_t pr, int mode,
                       float value, const float *x, float *y, int threads)
{
    int64_t oh, ow, t, hw;
    if (!y || (!x && h > 0 && w > 0))
        return CNN_ERR_ARG;
    if (mode != CNN_PAD_CONSTANT && mode != CNN_PAD_REFLECT && mode != CNN_PAD_EDGE)
        return CNN_ERR_ARG;
    if (nc < 1 || h < 0 || w < 0 || pt < 0 || pl < 0 || pb < 0 || pr < 0)
        return CNN_ERR_SHAPE;
    if (__builtin_add_overflow(h, pt, &oh) || __builtin_add_overflow(oh, pb, &oh) ||
        __builtin_add_overflow(w, pl, &ow) || __builtin_add_overflow(ow, pr, &ow) ||
        !cnn_mul_ok(nc, oh, &t) || !cnn_mul_ok(t, ow, &t) || !cnn_mul_ok(h, w, &hw) ||
        !cnn_mul_ok(nc, hw, &t))
        return CNN_ERR_SHAPE;
    if (mode == CNN_PAD_REFLECT && (pt >= h || pb >= h || pl >= w || pr >= w))
        return CNN_ERR_SHAPE;
    if (mode == CNN_PAD_EDGE && (h < 1 || w < 1))
        return CNN_ERR_SHAPE;
    if (oh < 1 || ow < 1)
        return CNN_OK;
    if (threads < 1)
        threads = 1;
    const int64_t rows = nc * oh;
    pad_job jb = {h, w, oh, ow, pt, pl, pr, mode, value, x, y};
    cnn_pool_for(threads, rows, NULL, cnn_threads_steal(), pad_unit, &jb);
    return CNN_OK;
}
