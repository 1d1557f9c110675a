/* Nearest / (bi)linear resize of x (NC,H,W) -> y (NC,OH,OW) with the ONNX
 * coordinate transforms, in float arithmetic as ONNX Runtime:
 *   half_pixel          (o + 0.5) / scale - 0.5
 *   pytorch_half_pixel  the same, but 0 when the output length is 1
 *   asymmetric          o / scale
 *   align_corners       o * (in - 1) / (out - 1), 0 when out == 1
 * Nearest rounds with `rounding` then clamps to [0, in). Linear clamps the
 * source coordinate to [0, in - 1] and blends i0 = floor, i1 = min(i0+1,
 * in-1). Per-axis index tables are built once; the pool over output rows. */
#include "internal.h"
#include "pool.h"

static float src_coord(int64_t o, float scale, int64_t out, int64_t in, int coord)
{
    const float fo = (float)o;
    switch (coord) {
    case CNN_COORD_HALF_PIXEL: return (fo + 0.5f) / scale - 0.5f;
    case CNN_COORD_PYTORCH_HALF_PIXEL: return out > 1 ? (fo + 0.5f) / scale - 0.5f : 0.f;
    case CNN_COORD_ASYMMETRIC: return fo / scale;
    default: return out == 1 ? 0.f : fo * (float)(in - 1) / (float)(out - 1);
    }
}

static int64_t nearest_index(float v, int rounding, int64_t in)
{
    float r;
    if (!(v >= -1.f))           /* also NaN; keeps the int casts defined */
        v = -1.f;
    if (v > (float)in)
        v = (float)in;
    switch (rounding) {
    case CNN_ROUND_PREFER_FLOOR:
        r = (v == (float)(int64_t)v + 0.5f) ? floorf(v) : roundf(v);
        break;
    case CNN_ROUND_PREFER_CEIL: r = roundf(v); break;
    case CNN_ROUND_FLOOR: r = floorf(v); break;
    default: r = ceilf(v); break;
    }
    if (r < 0.f)
        return 0;
    if (r >= (float)in)
        return in - 1;
    int64_t i = (int64_t)r;
    return i < in ? i : in - 1;
}

/* Axis table: i0, i1 (element offsets times `mul`) and weight of i1. */
static void axis_table(int64_t out, int64_t in, float scale, int mode, int coord,
                       int rounding, int64_t mul, int64_t *i0, int64_t *i1, float *l)
{
    for (int64_t o = 0; o < out; o++) {
        float v = src_coord(o, scale, out, in, coord);
        if (mode == CNN_RESIZE_NEAREST) {
            i0[o] = i1[o] = nearest_index(v, rounding, in) * mul;
            l[o] = 0.f;
            continue;
        }
        if (!(v > 0.f))
            v = 0.f;
        if (v > (float)(in - 1))
            v = (float)(in - 1);
        int64_t a = (int64_t)v;
        if (a > in - 1)
            a = in - 1;
        int64_t b = a + 1 < in ? a + 1 : in - 1;
        i0[o] = a * mul;
        i1[o] = b * mul;
        l[o] = b == a ? 0.f : v - (float)a;
    }
}

typedef struct resize_job {
    int64_t h, w, oh, ow;
    int mode;
    const int64_t *y0, *y1, *x0, *x1;
    const float *ly, *lx, *x;
    float *y;
} resize_job;

/* Output row r (plane r / oh). */
static void resize_unit(void *ctx, int64_t r, int slot)
{
    (void)slot;
    const resize_job *jb = (const resize_job *)ctx;
    const int64_t h = jb->h, w = jb->w, oh = jb->oh, ow = jb->ow;
    const int mode = jb->mode;
    const int64_t *y0 = jb->y0, *y1 = jb->y1, *x0 = jb->x0, *x1 = jb->x1;
    const float *ly = jb->ly, *lx = jb->lx, *x = jb->x;
    float *y = jb->y;
    const int64_t q = r / oh, oy = r % oh;
    const float *plane = x + q * h * w;
    const float *r0 = plane + y0[oy], *r1 = plane + y1[oy];
    float *yr = y + r * ow;
    if (mode == CNN_RESIZE_NEAREST) {
        for (int64_t ox = 0; ox < ow; ox++)
            yr[ox] = r0[x0[ox]];
        return;
    }
    const float b = ly[oy], a = 1.f - b;
    for (int64_t ox = 0; ox < ow; ox++) {
        const float d = lx[ox], c = 1.f - d;
        yr[ox] = a * (c * r0[x0[ox]] + d * r0[x1[ox]]) +
                 b * (c * r1[x0[ox]] + d * r1[x1[ox]]);
    }
}

cnn_status cnn_resize_f32(int64_t nc, int64_t h, int64_t w, int64_t oh,
                          int64_t ow, int mode, int coord, int rounding,
                          float scale_h, float scale_w, const float *x,
                          float *y, int threads)
{
    int64_t t, tab;
    if (!x || !y)
        return CNN_ERR_ARG;
    if ((mode != CNN_RESIZE_NEAREST && mode != CNN_RESIZE_LINEAR) ||
        coord < CNN_COORD_HALF_PIXEL || coord > CNN_COORD_ALIGN_CORNERS ||
        rounding < CNN_ROUND_PREFER_FLOOR || rounding > CNN_ROUND_CEIL ||
        !(scale_h > 0.f) || !(scale_w > 0.f) || isinf(scale_h) || isinf(scale_w))
        return CNN_ERR_ARG;
    if (nc < 1 || h < 1 || w < 1 || oh < 1 || ow < 1 || !cnn_mul_ok(nc, h, &t) ||
        !cnn_mul_ok(t, w, &t) || !cnn_mul_ok(nc, oh, &t) || !cnn_mul_ok(t, ow, &t) ||
        __builtin_add_overflow(oh, ow, &tab) || !cnn_mul_ok(tab, 5, &tab))
        return CNN_ERR_SHAPE;
    /* tables: per output row y0, y1, ly; per output column x0, x1, lx
     * (int64 entries take two float slots) */
    float *ws = cnn_alloc_floats(tab);
    if (!ws)
        return CNN_ERR_OOM;
    int64_t *y0 = (int64_t *)ws, *y1 = y0 + oh, *x0 = y1 + oh, *x1 = x0 + ow;
    float *ly = (float *)(x1 + ow), *lx = ly + oh;
    axis_table(oh, h, scale_h, mode, coord, rounding, w, y0, y1, ly);
    axis_table(ow, w, scale_w, mode, coord, rounding, 1, x0, x1, lx);
    if (threads < 1)
        threads = 1;
    const int64_t rows = nc * oh;
    resize_job jb = {h, w, oh, ow, mode, y0, y1, x0, x1, ly, lx, x, y};
    cnn_pool_for(threads, rows, NULL, cnn_threads_steal(), resize_unit, &jb);
    free(ws);
    return CNN_OK;
}
