#pragma GCC target("avx2,fma")
/* 2-D max / average pooling, AVX2.
 *
 * One output row at a time (OpenMP over N*C*OH rows): a vertical pass
 * combines the window's valid input rows into a padded scratch row (padding
 * cells hold -inf for max, 0 for avg, written once per thread), then a
 * branch-free horizontal pass runs the kw taps over it, 8 outputs per
 * vector: contiguous loads for stride 1, an even/odd deinterleave for
 * stride 2 (2x2s2, 3x3s2), scalar for other strides. Any kernel, stride,
 * dilation and padding take this path; the divisor of an average is the
 * product of its per-axis counts, since a window is a rectangle.
 */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "internal.h"
#include "../ops/pool2d.h"
#include "pool.h"

#define ALWAYS_INLINE inline __attribute__((always_inline))

static ALWAYS_INLINE __m256 vop(__m256 a, __m256 b, int is_max)
{
    return is_max ? _mm256_max_ps(a, b) : _mm256_add_ps(a, b);
}

static ALWAYS_INLINE float sop(float a, float b, int is_max)
{
    return is_max ? (b > a ? b : a) : a + b;
}

/* Elements 0,2,..,14 and 1,3,..,15 of a, b (a = p[0..7], b = p[8..15]). */
static ALWAYS_INLINE __m256 even8(__m256 a, __m256 b)
{
    __m256 e = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0)));
}

static ALWAYS_INLINE __m256 odd8(__m256 a, __m256 b)
{
    __m256 o = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), _MM_SHUFFLE(3, 1, 2, 0)));
}

/* dst[x] = op over r < nr of base[r*step + x], x < wl. */
static ALWAYS_INLINE void vpass(const float *base, int64_t step, int64_t nr,
                                int64_t wl, float *dst, int is_max)
{
    int64_t x = 0;
    for (; x + 32 <= wl; x += 32) {
        const float *s = base + x;
        __m256 v0 = _mm256_loadu_ps(s), v1 = _mm256_loadu_ps(s + 8);
        __m256 v2 = _mm256_loadu_ps(s + 16), v3 = _mm256_loadu_ps(s + 24);
        for (int64_t r = 1; r < nr; r++) {
            s += step;
            v0 = vop(v0, _mm256_loadu_ps(s), is_max);
            v1 = vop(v1, _mm256_loadu_ps(s + 8), is_max);
            v2 = vop(v2, _mm256_loadu_ps(s + 16), is_max);
            v3 = vop(v3, _mm256_loadu_ps(s + 24), is_max);
        }
        _mm256_storeu_ps(dst + x, v0);
        _mm256_storeu_ps(dst + x + 8, v1);
        _mm256_storeu_ps(dst + x + 16, v2);
        _mm256_storeu_ps(dst + x + 24, v3);
    }
    for (; x + 8 <= wl; x += 8) {
        const float *s = base + x;
        __m256 v = _mm256_loadu_ps(s);
        for (int64_t r = 1; r < nr; r++) {
            s += step;
            v = vop(v, _mm256_loadu_ps(s), is_max);
        }
        _mm256_storeu_ps(dst + x, v);
    }
    for (; x < wl; x++) {
        const float *s = base + x;
        float v = *s;
        for (int64_t r = 1; r < nr; r++) {
            s += step;
            v = sop(v, *s, is_max);
        }
        dst[x] = v;
    }
}

/* out[ox] = op over j < kw of t[ox*sw + j*dw]; t is padded, no bounds. */
static ALWAYS_INLINE void hpass(const float *t, int64_t ow, int64_t kw,
                                int64_t sw, int64_t dw, float *out, int is_max)
{
    int64_t ox = 0;
    if (sw == 1) {
        for (; ox + 8 <= ow; ox += 8) {
            const float *q = t + ox;
            __m256 v = _mm256_loadu_ps(q);
            for (int64_t j = 1; j < kw; j++)
                v = vop(v, _mm256_loadu_ps(q + j * dw), is_max);
            _mm256_storeu_ps(out + ox, v);
        }
    } else if (sw == 2 && dw == 1) {
        for (; ox + 8 <= ow; ox += 8) {
            const float *q = t + 2 * ox;
            __m256 a = _mm256_loadu_ps(q), b = _mm256_loadu_ps(q + 8);
            __m256 v = even8(a, b);
            int64_t j = 1;
            if (kw >= 2) {
                v = vop(v, odd8(a, b), is_max);
                j = 2;
            }
            for (; j + 1 < kw; j += 2) {
                a = _mm256_loadu_ps(q + j);
                b = _mm256_loadu_ps(q + j + 8);
                v = vop(v, even8(a, b), is_max);
                v = vop(v, odd8(a, b), is_max);
            }
            if (j < kw)
                v = vop(v, even8(_mm256_loadu_ps(q + j), _mm256_loadu_ps(q + j + 8)), is_max);
            _mm256_storeu_ps(out + ox, v);
        }
    } else if (sw == 2) {
        for (; ox + 8 <= ow; ox += 8) {
            const float *q = t + 2 * ox;
            __m256 v = even8(_mm256_loadu_ps(q), _mm256_loadu_ps(q + 8));
            for (int64_t j = 1; j < kw; j++)
                v = vop(v, even8(_mm256_loadu_ps(q + j * dw),
                                 _mm256_loadu_ps(q + j * dw + 8)), is_max);
            _mm256_storeu_ps(out + ox, v);
        }
    }
    for (; ox < ow; ox++) {
        const float *q = t + ox * sw;
        float v = q[0];
        for (int64_t j = 1; j < kw; j++)
            v = sop(v, q[j * dw], is_max);
        out[ox] = v;
    }
}

typedef struct pool_job {
    const cnn_pool2d_params *p;
    const float *x, *cwv;
    float *y, *ws;
    int64_t wl, wp;
} pool_job;

/* Output row r (plane r / oh) through the slot's padded scratch row. */
static ALWAYS_INLINE void pool_row(const pool_job *jb, int64_t r, int slot, int is_max)
{
    const cnn_pool2d_params *p = jb->p;
    const int64_t h = p->h, w = p->w, oh = p->oh, ow = p->ow;
    float *tmp = jb->ws + slot * jb->wp;
    const float *cwv = jb->cwv;
    const int64_t q = r / oh, oy = r % oh;
    const int64_t ay = oy * p->sh - p->pt;
    int64_t i0, i1;
    cnn_pool_taps(ay, p->kh, p->dh, 0, h, &i0, &i1);
    const float *base = jb->x + (q * h + ay + i0 * p->dh) * w;
    float *yr = jb->y + r * ow;
    vpass(base, p->dh * w, i1 - i0, jb->wl, tmp + p->pl, is_max);
    hpass(tmp, ow, p->kw, p->sw, p->dw, yr, is_max);
    if (!is_max) {
        float ch = (float)(p->count_include_pad
            ? cnn_pool_count(ay, p->kh, p->dh, -p->pt, h + p->pb) : i1 - i0);
        __m256 chv = _mm256_set1_ps(ch);
        int64_t ox = 0;
        for (; ox + 8 <= ow; ox += 8)
            _mm256_storeu_ps(yr + ox, _mm256_div_ps(_mm256_loadu_ps(yr + ox),
                _mm256_mul_ps(chv, _mm256_loadu_ps(cwv + ox))));
        for (; ox < ow; ox++)
            yr[ox] = yr[ox] / (ch * cwv[ox]);
    }
}

static void max_row(void *ctx, int64_t r, int slot) { pool_row((const pool_job *)ctx, r, slot, 1); }
static void avg_row(void *ctx, int64_t r, int slot) { pool_row((const pool_job *)ctx, r, slot, 0); }

static cnn_status pool2d_avx2(const cnn_pool2d_params *p, const float *x, float *y, int threads,
                              int is_max)
{
    const int64_t w = p->w, oh = p->oh, ow = p->ow;
    const int64_t rows = p->n * p->c * oh;
    /* Scratch row: padded column t holds input column t - pl. The windows
     * reach column span - 1; stride-2 vectors read up to 16 floats past a
     * window start, hence the slack. */
    const int64_t span = (ow - 1) * p->sw + (p->kw - 1) * p->dw + 1;
    const int64_t wl = w < span - p->pl ? w : span - p->pl;   /* >= 1 */
    int64_t wp = (span > p->pl + wl ? span : p->pl + wl) + 16;
    wp = (wp + 15) & ~(int64_t)15;
    int64_t total;
    if (!cnn_mul_ok(wp, threads, &total) || total > ((int64_t)1 << 40))
        return CNN_ERR_OOM;
    float *ws = cnn_alloc_floats(total + ow);
    if (!ws)
        return CNN_ERR_OOM;
    float *cwv = ws + total;    /* avg: per-column divisor factor */
    if (!is_max)
        for (int64_t ox = 0; ox < ow; ox++) {
            int64_t ax = ox * p->sw - p->pl;
            cwv[ox] = (float)(p->count_include_pad
                ? cnn_pool_count(ax, p->kw, p->dw, -p->pl, w + p->pr)
                : cnn_pool_count(ax, p->kw, p->dw, 0, w));
        }
    const float fill = is_max ? -INFINITY : 0.f;
    /* every slot's padding columns, once: the rows write only [pl, pl + wl) */
    for (int s = 0; s < threads; s++) {
        float *tmp = ws + (int64_t)s * wp;
        for (int64_t t = 0; t < p->pl; t++)
            tmp[t] = fill;
        for (int64_t t = p->pl + wl; t < wp; t++)
            tmp[t] = fill;
    }
    pool_job jb = {p, x, cwv, y, ws, wl, wp};
    cnn_pool_for(threads, rows, NULL, cnn_threads_steal(), is_max ? max_row : avg_row, &jb);
    free(ws);
    return CNN_OK;
}

cnn_status cnn_max_pool2d_f32_avx2(const cnn_pool2d_params *p, const float *x,
                                   float *y, int threads)
{
    return pool2d_avx2(p, x, y, threads, 1);
}

cnn_status cnn_avg_pool2d_f32_avx2(const cnn_pool2d_params *p, const float *x,
                                   float *y, int threads)
{
    return pool2d_avx2(p, x, y, threads, 0);
}

#endif
