/* 2-D max / average pooling: validation, dispatch and the scalar reference.
 *
 * x (N,C,H,W) -> y (N,C,OH,OW). Output index o reads input taps
 * o*s - pad + j*d, j < k; taps outside [0, H) are padding: padding never
 * wins a max, and counts in an average's divisor only with
 * count_include_pad, clipped to the padded extent [-pt, H + pb) as PyTorch.
 * OH/OW are the caller's (a ceil_mode window may run past the padding), but
 * every window must hold at least one input element (CNN_ERR_SHAPE).
 */
#include "internal.h"
#include "pool2d.h"
#include "nchwc.h"
#include "pool.h"

#define POOL_LIM ((int64_t)1 << 60)

static int axis_ok(int64_t in, int64_t out, int64_t k, int64_t s, int64_t d,
                   int64_t p0, int64_t p1)
{
    int64_t span, last;
    if (in < 1 || out < 1 || k < 1 || s < 1 || d < 1 || p0 < 0 || p1 < 0)
        return 0;
    if (in >= POOL_LIM || out >= POOL_LIM || k >= POOL_LIM || s >= POOL_LIM ||
        d >= POOL_LIM || p0 >= POOL_LIM || p1 >= POOL_LIM)
        return 0;
    if (!cnn_mul_ok(out - 1, s, &last) || !cnn_mul_ok(k - 1, d, &span) ||
        last >= POOL_LIM || span >= POOL_LIM)
        return 0;
    /* Every window must hold an input element. Window starts grow with o,
     * so only the first windows can end before the input and only the last
     * ones start after it; with dilation a window can also straddle the
     * input between two taps, so check each output index (O(out)). */
    for (int64_t o = 0; o < out; o++)
        if (cnn_pool_count(o * s - p0, k, d, 0, in) == 0)
            return 0;
    return 1;
}

static cnn_status pool_validate(const cnn_pool2d_params *p, const float *x,
                                const float *y)
{
    int64_t nc, t;
    if (!p || !x || !y)
        return CNN_ERR_ARG;
    if (p->n < 1 || p->c < 1 || !cnn_mul_ok(p->n, p->c, &nc))
        return CNN_ERR_SHAPE;
    if (!axis_ok(p->h, p->oh, p->kh, p->sh, p->dh, p->pt, p->pb) ||
        !axis_ok(p->w, p->ow, p->kw, p->sw, p->dw, p->pl, p->pr))
        return CNN_ERR_SHAPE;
    if (!cnn_mul_ok(nc, p->h, &t) || !cnn_mul_ok(t, p->w, &t) ||
        !cnn_mul_ok(nc, p->oh, &t) || !cnn_mul_ok(t, p->ow, &t))
        return CNN_ERR_SHAPE;
    return CNN_OK;
}

typedef struct pool_job {
    const cnn_pool2d_params *p;
    const float *x;
    float *y;
} pool_job;

/* Plane q (image x channel) of a max pool. */
static void max_unit(void *ctx, int64_t q, int slot)
{
    (void)slot;
    const pool_job *jb = (const pool_job *)ctx;
    const cnn_pool2d_params *p = jb->p;
    const int64_t oh = p->oh, ow = p->ow, h = p->h, w = p->w;
    const float *xp = jb->x + q * h * w;
    float *yp = jb->y + q * oh * ow;
    for (int64_t oy = 0; oy < oh; oy++) {
        int64_t ay = oy * p->sh - p->pt, i0, i1;
        cnn_pool_taps(ay, p->kh, p->dh, 0, h, &i0, &i1);
        for (int64_t ox = 0; ox < ow; ox++) {
            int64_t ax = ox * p->sw - p->pl, j0, j1;
            cnn_pool_taps(ax, p->kw, p->dw, 0, w, &j0, &j1);
            float m = -INFINITY;
            for (int64_t i = i0; i < i1; i++) {
                const float *row = xp + (ay + i * p->dh) * w;
                for (int64_t j = j0; j < j1; j++) {
                    float v = row[ax + j * p->dw];
                    m = v > m ? v : m;
                }
            }
            yp[oy * ow + ox] = m;
        }
    }
}

/* Plane q of an average pool. */
static void avg_unit(void *ctx, int64_t q, int slot)
{
    (void)slot;
    const pool_job *jb = (const pool_job *)ctx;
    const cnn_pool2d_params *p = jb->p;
    const int64_t oh = p->oh, ow = p->ow, h = p->h, w = p->w;
    const float *xp = jb->x + q * h * w;
    float *yp = jb->y + q * oh * ow;
    for (int64_t oy = 0; oy < oh; oy++) {
        int64_t ay = oy * p->sh - p->pt, i0, i1;
        cnn_pool_taps(ay, p->kh, p->dh, 0, h, &i0, &i1);
        int64_t ch = p->count_include_pad
            ? cnn_pool_count(ay, p->kh, p->dh, -p->pt, h + p->pb) : i1 - i0;
        for (int64_t ox = 0; ox < ow; ox++) {
            int64_t ax = ox * p->sw - p->pl, j0, j1;
            cnn_pool_taps(ax, p->kw, p->dw, 0, w, &j0, &j1);
            int64_t cw = p->count_include_pad
                ? cnn_pool_count(ax, p->kw, p->dw, -p->pl, w + p->pr) : j1 - j0;
            float s = 0.f;
            for (int64_t i = i0; i < i1; i++) {
                const float *row = xp + (ay + i * p->dh) * w;
                for (int64_t j = j0; j < j1; j++)
                    s += row[ax + j * p->dw];
            }
            yp[oy * ow + ox] = s / (float)(ch * cw);
        }
    }
}

cnn_status cnn_max_pool2d_f32_ref(const cnn_pool2d_params *p, const float *x, float *y,
                                 int threads)
{
    pool_job jb = {p, x, y};
    cnn_pool_for(threads, p->n * p->c, NULL, cnn_threads_steal(), max_unit, &jb);
    return CNN_OK;
}

cnn_status cnn_avg_pool2d_f32_ref(const cnn_pool2d_params *p, const float *x, float *y,
                                 int threads)
{
    pool_job jb = {p, x, y};
    cnn_pool_for(threads, p->n * p->c, NULL, cnn_threads_steal(), avg_unit, &jb);
    return CNN_OK;
}

cnn_status cnn_max_pool2d_f32(const cnn_pool2d_params *p, const float *x,
                              float *y, int threads)
{
    cnn_status st = pool_validate(p, x, y);
    if (st != CNN_OK)
        return st;
    if (threads < 1)
        threads = 1;
    return cnn_plat()->max_pool2d(p, x, y, threads);
}

cnn_status cnn_avg_pool2d_f32(const cnn_pool2d_params *p, const float *x,
                              float *y, int threads)
{
    cnn_status st = pool_validate(p, x, y);
    if (st != CNN_OK)
        return st;
    if (threads < 1)
        threads = 1;
    return cnn_plat()->avg_pool2d(p, x, y, threads);
}

/* Blocked layout (csrc/x86/nchwc_avx2.c): validated here like the NCHW ones. */
cnn_status cnn_pool2d_nchwc_f32(const cnn_pool2d_params *p, int is_max, const float *x,
                                float *y, int threads)
{
    cnn_status st = pool_validate(p, x, y);
    if (st != CNN_OK)
        return st;
    const cnn_nchwc_pool2d_fn pool = cnn_plat()->nchwc_pool2d;
    if (!pool)
        return CNN_ERR_UNSUPPORTED;
    pool(p, is_max, x, y, threads < 1 ? 1 : threads);
    return CNN_OK;
}
