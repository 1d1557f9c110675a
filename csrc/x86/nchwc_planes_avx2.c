#pragma GCC target("avx2,fma")
/* Blocked-layout (NCHW8c) per-plane kernels for AVX2/FMA: global pooling,
 * per-channel scale and affine, windowed pooling, and the reorders at the
 * layout's edges. Each unit of the pool is one (image, block) plane.
 */
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "../ops/pool2d.h"
#include "nchwc_conv.h"
#include "pool.h"

#define B CNN_NCHWC
#define INLINE CNN_INLINE

typedef struct gpool_job {
    int64_t hw;
    int is_max;
    const float *x;
    float *y;
} gpool_job;

static void gpool_unit(void *ctx, int64_t q, int slot)
{
    const gpool_job *jb = (const gpool_job *)ctx;
    (void)slot;
    const int64_t hw = jb->hw;
    const int is_max = jb->is_max;
    const float *x = jb->x;
    float *y = jb->y;
    const float *s = x + q * hw * B;
    __m256 a0 = _mm256_loadu_ps(s), a1 = is_max ? a0 : _mm256_setzero_ps();
    int64_t p = 1;
    if (is_max) {
        for (; p + 2 <= hw; p += 2) {
            a0 = _mm256_max_ps(a0, _mm256_loadu_ps(s + p * B));
            a1 = _mm256_max_ps(a1, _mm256_loadu_ps(s + (p + 1) * B));
        }
        for (; p < hw; p++)
            a0 = _mm256_max_ps(a0, _mm256_loadu_ps(s + p * B));
        _mm256_storeu_ps(y + q * B, _mm256_max_ps(a0, a1));
    } else {
        for (; p + 2 <= hw; p += 2) {
            a0 = _mm256_add_ps(a0, _mm256_loadu_ps(s + p * B));
            a1 = _mm256_add_ps(a1, _mm256_loadu_ps(s + (p + 1) * B));
        }
        for (; p < hw; p++)
            a0 = _mm256_add_ps(a0, _mm256_loadu_ps(s + p * B));
        _mm256_storeu_ps(y + q * B,
                        _mm256_mul_ps(_mm256_add_ps(a0, a1), _mm256_set1_ps(1.f / (float)hw)));
    }
}

void cnn_global_pool_nchwc_avx2(int64_t n, int64_t c, int64_t hw, int is_max, const float *x,
                                float *y, int threads)
{
    const int64_t q_count = n * ((c + B - 1) / B);
    if (threads > q_count) threads = (int)q_count;
    if (q_count * hw < 16384)   /* see cnn_nchwc_conv_drive */
        threads = 1;
    gpool_job jb = {hw, is_max, x, y};
    cnn_pool_for(threads, q_count, NULL, cnn_threads_steal(), gpool_unit, &jb);
}

typedef struct scale_job {
    int64_t hw;
    const float *x;
    const float *s;
    float *y;
} scale_job;

static void scale_unit(void *ctx, int64_t q, int slot)
{
    const scale_job *jb = (const scale_job *)ctx;
    (void)slot;
    const int64_t hw = jb->hw;
    const float *x = jb->x, *s = jb->s;
    float *y = jb->y;
    const __m256 f = _mm256_loadu_ps(s + q * B);
    const float *src = x + q * hw * B;
    float *d = y + q * hw * B;
    int64_t p = 0;
    for (; p + 4 <= hw; p += 4) {
        __m256 v0 = _mm256_loadu_ps(src + p * B), v1 = _mm256_loadu_ps(src + (p + 1) * B);
        __m256 v2 = _mm256_loadu_ps(src + (p + 2) * B), v3 = _mm256_loadu_ps(src + (p + 3) * B);
        _mm256_storeu_ps(d + p * B, _mm256_mul_ps(v0, f));
        _mm256_storeu_ps(d + (p + 1) * B, _mm256_mul_ps(v1, f));
        _mm256_storeu_ps(d + (p + 2) * B, _mm256_mul_ps(v2, f));
        _mm256_storeu_ps(d + (p + 3) * B, _mm256_mul_ps(v3, f));
    }
    for (; p < hw; p++)
        _mm256_storeu_ps(d + p * B, _mm256_mul_ps(_mm256_loadu_ps(src + p * B), f));
}

void cnn_nchwc_scale_avx2(int64_t n, int64_t c, int64_t hw, const float *x, const float *s,
                          float *y, int threads)
{
    const int64_t q_count = n * ((c + B - 1) / B);
    const int64_t work = q_count * hw;
    if (work < 16384)
        threads = 1;
    if (threads > q_count) threads = (int)q_count;
    scale_job jb = {hw, x, s, y};
    cnn_pool_for(threads, q_count, NULL, cnn_threads_steal(), scale_unit, &jb);
}

typedef struct affine_job {
    int64_t hw;
    int64_t cbs;
    const float *x;
    const float *scale;
    const float *shift;
    const cnn_epilogue *ep;
    float *y;
} affine_job;

/* hw pixels of one block plane: d = act(src * scale + shift). */
static inline void affine_plane(const float *src, float *d, int64_t hw, const float *scale,
                                const float *shift, const cnn_epilogue *ep)
{
    const __m256 f = _mm256_loadu_ps(scale), a = _mm256_loadu_ps(shift);
    const cnn_epilogue e = *ep;    /* see conv_tile */
    for (int64_t p = 0; p < hw; p++)
        _mm256_storeu_ps(d + p * B, cnn_act_v(&e, _mm256_fmadd_ps(_mm256_loadu_ps(src + p * B), f, a)));
    if (!cnn_act_in_tile(ep->act))   /* the ones cnn_act_v left out */
        cnn_act_row_avx2(ep, d, d, hw * B);
}

static void affine_unit(void *ctx, int64_t q, int slot)
{
    const affine_job *jb = (const affine_job *)ctx;
    (void)slot;
    const int64_t hw = jb->hw, c0 = q % jb->cbs * B;
    affine_plane(jb->x + q * hw * B, jb->y + q * hw * B, hw, jb->scale + c0, jb->shift + c0, jb->ep);
}

void cnn_nchwc_affine_span_avx2(const float *x, int64_t stride, int64_t blocks, int64_t px,
                                const float *scale, const float *shift, const cnn_epilogue *ep,
                                float *y)
{
    for (int64_t b = 0; b < blocks; b++)
        affine_plane(x + b * stride, y + b * stride, px, scale + b * B, shift + b * B, ep);
}

void cnn_nchwc_affine_avx2(int64_t n, int64_t c, int64_t hw, const float *x, const float *scale,
                           const float *shift, const cnn_epilogue *ep, float *y, int threads)
{
    const int64_t cbs = (c + B - 1) / B, q_count = n * cbs;
    if (threads > q_count) threads = (int)q_count;
    if (q_count * hw < 16384)   /* see cnn_nchwc_conv_drive */
        threads = 1;
    affine_job jb = {hw, cbs, x, scale, shift, ep, y};
    cnn_pool_for(threads, q_count, NULL, cnn_threads_steal(), affine_unit, &jb);
}

/* PX output pixels from ox0 of one row whose every column tap is inside
 * the image (rows [i0, i1) of the kernel are): PX independent chains, the
 * kernel width's loop without bounds checks. */
INLINE void pool_tile(const cnn_pool2d_params *p, const int MAX, const int PX, const float *xp,
                      int64_t ay, int64_t i0, int64_t i1, int64_t ox0, __m256 scale, float *yp)
{
    const __m256 init = _mm256_set1_ps(MAX ? -INFINITY : 0.f);
    __m256 m0 = init, m1 = init, m2 = init, m3 = init;
    const int64_t xs = p->sw * B, ax = ox0 * p->sw - p->pl;
    for (int64_t i = i0; i < i1; i++) {
        const float *row = xp + ((ay + i * p->dh) * p->w + ax) * B;
        for (int64_t j = 0; j < p->kw; j++) {
            const float *q = row + j * p->dw * B;
            /* max_ps(v, m) = v > m ? v : m: NaN never wins, as the oracle */
#define CNN_PIX(P)                                                                   \
            if (PX > P)                                                              \
                m##P = MAX ? _mm256_max_ps(_mm256_loadu_ps(q + P * xs), m##P)        \
                           : _mm256_add_ps(m##P, _mm256_loadu_ps(q + P * xs));
            CNN_PIX(0) CNN_PIX(1) CNN_PIX(2) CNN_PIX(3)
#undef CNN_PIX
        }
    }
    float *d = yp + ox0 * B;
#define CNN_OUT(P)                                                                   \
    if (PX > P)                                                                      \
        _mm256_storeu_ps(d + P * B, MAX ? m##P : _mm256_div_ps(m##P, scale));
    CNN_OUT(0) CNN_OUT(1) CNN_OUT(2) CNN_OUT(3)
#undef CNN_OUT
}

/* One output row: border pixels one at a time with clipped taps (the
 * window arithmetic of pool2d.c), the interior four at a time. */
INLINE void pool_row(const cnn_pool2d_params *p, const int MAX, const float *xp, float *yp,
                     int64_t oy, int64_t in_lo, int64_t in_hi)
{
    const int64_t h = p->h, w = p->w, ow = p->ow;
    const int64_t ay = oy * p->sh - p->pt;
    int64_t i0, i1;
    cnn_pool_taps(ay, p->kh, p->dh, 0, h, &i0, &i1);
    const int64_t ch = p->count_include_pad
        ? cnn_pool_count(ay, p->kh, p->dh, -p->pt, h + p->pb) : i1 - i0;
    for (int64_t ox = 0; ox < ow; ox++) {
        if (ox == in_lo && in_hi > in_lo) {
            /* interior: every column tap inside, so kw of them counted in
             * either average mode */
            const __m256 scale = _mm256_set1_ps((float)(ch * p->kw));
            for (; ox + 4 <= in_hi; ox += 4)
                pool_tile(p, MAX, 4, xp, ay, i0, i1, ox, scale, yp);
            for (; ox < in_hi; ox++)
                pool_tile(p, MAX, 1, xp, ay, i0, i1, ox, scale, yp);
            if (ox >= ow)
                break;
        }
        const int64_t ax = ox * p->sw - p->pl;
        int64_t j0, j1;
        cnn_pool_taps(ax, p->kw, p->dw, 0, w, &j0, &j1);
        __m256 m = _mm256_set1_ps(MAX ? -INFINITY : 0.f);
        for (int64_t i = i0; i < i1; i++) {
            const float *row = xp + (ay + i * p->dh) * w * B;
            for (int64_t j = j0; j < j1; j++) {
                const __m256 v = _mm256_loadu_ps(row + (ax + j * p->dw) * B);
                m = MAX ? _mm256_max_ps(v, m) : _mm256_add_ps(m, v);
            }
        }
        if (!MAX) {
            const int64_t cw = p->count_include_pad
                ? cnn_pool_count(ax, p->kw, p->dw, -p->pl, w + p->pr) : j1 - j0;
            m = _mm256_div_ps(m, _mm256_set1_ps((float)(ch * cw)));  /* as the oracle */
        }
        _mm256_storeu_ps(yp + ox * B, m);
    }
}

typedef struct pool_job {
    const cnn_pool2d_params *p;
    int is_max;
    const float *x;
    float *y;
    int64_t in_lo;
    int64_t in_hi;
} pool_job;

static void pool_unit(void *ctx, int64_t q, int slot)
{
    const pool_job *jb = (const pool_job *)ctx;
    (void)slot;
    const cnn_pool2d_params *p = jb->p;
    const int is_max = jb->is_max;
    const float *x = jb->x;
    float *y = jb->y;
    const int64_t in_lo = jb->in_lo, in_hi = jb->in_hi;
    const int64_t oh = p->oh, ow = p->ow, h = p->h, w = p->w;
    const float *xp = x + q * h * w * B;
    float *yp = y + q * oh * ow * B;
    for (int64_t oy = 0; oy < oh; oy++) {
        if (is_max)
            pool_row(p, 1, xp, yp + oy * ow * B, oy, in_lo, in_hi);
        else
            pool_row(p, 0, xp, yp + oy * ow * B, oy, in_lo, in_hi);
    }
}

/* One (image, block) plane per unit. */
void cnn_pool2d_nchwc_avx2(const cnn_pool2d_params *p, int is_max, const float *x, float *y,
                           int threads)
{
    const int64_t q_count = p->n * ((p->c + B - 1) / B), oh = p->oh, ow = p->ow;
    const int64_t w = p->w;
    if (threads > q_count) threads = (int)q_count;
    if (q_count * oh * ow < 4096)   /* see cnn_nchwc_conv_drive */
        threads = 1;
    /* interior output columns: every tap kx inside [0, w) */
    int64_t in_lo = (p->pl + p->sw - 1) / p->sw;
    const int64_t last = w - 1 + p->pl - (p->kw - 1) * p->dw;
    int64_t in_hi = last < 0 ? 0 : last / p->sw + 1;
    if (in_hi > ow) in_hi = ow;
    if (in_lo > in_hi) in_lo = in_hi;
    pool_job jb = {p, is_max, x, y, in_lo, in_hi};
    cnn_pool_for(threads, q_count, NULL, cnn_threads_steal(), pool_unit, &jb);
}

/* Both reorders: unit q is one block (image q / cbs, block q % cbs) of
 * c channels over hw pixels, plain <-> blocked. */
typedef struct reorder_job {
    int64_t c;
    int64_t hw;
    int64_t cbs;
    const float *x;
    float *y;
} reorder_job;

static void to_nchwc_unit(void *ctx, int64_t q, int slot)
{
    const reorder_job *jb = (const reorder_job *)ctx;
    (void)slot;
    const int64_t c = jb->c, hw = jb->hw, cbs = jb->cbs;
    const float *x = jb->x;
    float *y = jb->y;
    const int64_t img = q / cbs, cb = q % cbs;
    const int64_t nch = c - cb * B < B ? c - cb * B : B;
    const float *src = x + (img * c + cb * B) * hw;
    float *d = y + q * hw * B;
    int64_t p = 0;
    for (; p + 8 <= hw; p += 8) {
        __m256 r[8];
        for (int i = 0; i < 8; i++)
            r[i] = i < nch ? _mm256_loadu_ps(src + i * hw + p) : _mm256_setzero_ps();
        cnn_v_transpose8(r);
        for (int j = 0; j < 8; j++)
            _mm256_storeu_ps(d + (p + j) * B, r[j]);
    }
    for (; p < hw; p++)
        for (int64_t i = 0; i < B; i++)
            d[p * B + i] = i < nch ? src[i * hw + p] : 0.f;
}

static void to_nchw_unit(void *ctx, int64_t q, int slot)
{
    const reorder_job *jb = (const reorder_job *)ctx;
    (void)slot;
    const int64_t c = jb->c, hw = jb->hw, cbs = jb->cbs;
    const float *x = jb->x;
    float *y = jb->y;
    const int64_t img = q / cbs, cb = q % cbs;
    const int64_t nch = c - cb * B < B ? c - cb * B : B;
    const float *s = x + q * hw * B;
    float *dst = y + (img * c + cb * B) * hw;
    int64_t p = 0;
    for (; p + 8 <= hw; p += 8) {
        __m256 r[8];
        for (int j = 0; j < 8; j++)
            r[j] = _mm256_loadu_ps(s + (p + j) * B);
        cnn_v_transpose8(r);
        for (int i = 0; i < nch; i++)
            _mm256_storeu_ps(dst + i * hw + p, r[i]);
    }
    for (; p < hw; p++)
        for (int64_t i = 0; i < nch; i++)
            dst[i * hw + p] = s[p * B + i];
}

/* A block per unit; small reorders on one thread (see cnn_nchwc_conv_drive) */
static void reorder(int64_t n, int64_t c, int64_t hw, const float *x, float *y, int threads,
                    cnn_pool_fn unit)
{
    const int64_t cbs = (c + B - 1) / B, q_count = n * cbs;
    if (threads > q_count) threads = (int)q_count;
    if (q_count * hw < 16384)
        threads = 1;
    reorder_job jb = {c, hw, cbs, x, y};
    cnn_pool_for(threads, q_count, NULL, cnn_threads_steal(), unit, &jb);
}

void cnn_nchw_to_nchwc_avx2(int64_t n, int64_t c, int64_t hw, const float *x, float *y,
                            int threads)
{
    reorder(n, c, hw, x, y, threads, to_nchwc_unit);
}

void cnn_nchwc_to_nchw_avx2(int64_t n, int64_t c, int64_t hw, const float *x, float *y,
                            int threads)
{
    reorder(n, c, hw, x, y, threads, to_nchw_unit);
}
#endif
