/* The blocked convolution driver's input copies (csrc/ops/nchwc_drive.c):
 * a zero-padded copy, so that every output pixel is an interior one, and
 * the pixels a strided 1x1 reads, packed densely; the taps inside an input;
 * the L2 size its plans use. */
#include <string.h>
#include <unistd.h>

#include "nchwc_rows.h"
#include "pool.h"

#define B CNN_NCHWC

/* x (planes, h, w, cb) -> dst (planes, h + pt + pb, w + pl + pr, cb), zeros
 * around: on the copy every output pixel is an interior one (a border
 * pixel otherwise runs alone, 2 FMA chains instead of 12). */
typedef struct pad_job {
    const float *x;
    float *dst;
    int64_t h, w, cb, pt, pl, pr, hp, wp;
} pad_job;

/* Row q of the padded planes. */
static void pad_unit(void *ctx, int64_t q, int slot)
{
    const pad_job *jb = (const pad_job *)ctx;
    const int64_t cb = jb->cb, w = jb->w, pl = jb->pl, plane = q / jb->hp, yy = q % jb->hp;
    (void)slot;
    float *d = jb->dst + q * jb->wp * cb;
    if (yy < jb->pt || yy >= jb->pt + jb->h) {
        memset(d, 0, (size_t)(jb->wp * cb) * sizeof(float));
        return;
    }
    memset(d, 0, (size_t)(pl * cb) * sizeof(float));
    memcpy(d + pl * cb, jb->x + (plane * jb->h + yy - jb->pt) * w * cb, (size_t)(w * cb) * sizeof(float));
    memset(d + (pl + w) * cb, 0, (size_t)(jb->pr * cb) * sizeof(float));
}

static void pad_planes(const float *x, int64_t planes, int64_t h, int64_t w, int64_t cb,
                       int64_t pt, int64_t pb, int64_t pl, int64_t pr, float *dst, int threads)
{
    const int64_t hp = h + pt + pb, wp = w + pl + pr, rows = planes * hp;
    if (rows * wp * cb < 16384)   /* a job's hand-off costs more */
        threads = 1;
    pad_job jb = {x, dst, h, w, cb, pt, pl, pr, hp, wp};
    cnn_pool_for(threads, rows, NULL, cnn_threads_steal(), pad_unit, &jb);
}

/* A zero-padded copy of the input (pad_planes), or NULL: no padding, or
 * the allocation refused (the kernels then clip border taps themselves). */
float *cnn_nchwc_padded_input(const cnn_conv2d_params *p, const float *x, int64_t planes,
                              int64_t cb, int threads)
{
    if (!(p->pt | p->pb | p->pl | p->pr))
        return NULL;
    int64_t hp = p->h + p->pt + p->pb, wp = p->w + p->pl + p->pr, t;
    if (!cnn_mul_ok(planes, hp, &t) || !cnn_mul_ok(t, wp, &t) || !cnn_mul_ok(t, cb, &t))
        return NULL;
    float *d = cnn_alloc_floats(t);
    if (d)
        pad_planes(x, planes, p->h, p->w, cb, p->pt, p->pb, p->pl, p->pr, d, threads);
    return d;
}

typedef struct sub_job {
    const cnn_conv2d_params *p;
    const float *x;
    float *d;
} sub_job;

/* Output row q of the subsampled copy. */
static void sub_unit(void *ctx, int64_t q, int slot)
{
    const sub_job *jb = (const sub_job *)ctx;
    const cnn_conv2d_params *p = jb->p;
    const int64_t plane = q / p->oh, oy = q % p->oh;
    (void)slot;
    const float *s = jb->x + (plane * p->h + oy * p->sh) * p->w * B;
    float *o = jb->d + q * p->ow * B;
    for (int64_t ox = 0; ox < p->ow; ox++)
        memcpy(o + ox * B, s + ox * p->sw * B, B * sizeof(float));
}

/* The pixels a strided 1x1 conv without padding reads, packed densely
 * (planes, oh, ow, 8), or NULL: read in place, they are half of each cache
 * line, once per group of output blocks; the copy runs as a flat 1x1. */
float *cnn_nchwc_subsampled_input(const cnn_conv2d_params *p, const float *x, int64_t planes,
                                  int threads)
{
    int64_t t;
    if (!cnn_mul_ok(planes, p->oh, &t) || !cnn_mul_ok(t, p->ow, &t) || !cnn_mul_ok(t, B, &t))
        return NULL;
    float *d = cnn_alloc_floats(t);
    if (!d)
        return NULL;
    const int64_t rows = planes * p->oh;
    if (rows * p->ow * B < 16384)
        threads = 1;
    sub_job jb = {p, x, d};
    cnn_pool_for(threads, rows, NULL, cnn_threads_steal(), sub_unit, &jb);
    return d;
}

/* The L2 cache size in bytes (1 MiB where sysconf does not say). */
int64_t cnn_l2_bytes(void)
{
    static int64_t cached;
    int64_t v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (!v) {
        long s = -1;
#ifdef _SC_LEVEL2_CACHE_SIZE
        s = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
        v = s > 0 ? s : 1 << 20;
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return v;
}

/* Taps [k0, k1) of k, dilation d, whose input i0 + k * d lies in [0, n). */
void cnn_nchwc_tap_range(int64_t i0, int64_t k, int64_t d, int64_t n, int32_t *k0, int32_t *k1)
{
    int64_t a = 0, b = k;
    while (a < b && i0 + a * d < 0) a++;
    while (b > a && i0 + (b - 1) * d >= n) b--;
    *k0 = (int32_t)a;
    *k1 = (int32_t)b;
}
