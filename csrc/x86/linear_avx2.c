#pragma GCC target("avx2,fma")
/* linear on AVX2. Small batches (n < 4) are matrix-vector products bound by
 * reading w once: each thread takes blocks of 8 output rows (long rows) or
 * single rows and dots them with every x row. Batches up to LINEAR_STREAM_MAX stream w once per call too, in
 * slabs of columns whose x rows stay in cache (a GEMM would repack all of w
 * on every call: 411 MB for VGG-16's first dense layer). Larger batches run
 * the packed GEMM (x w^T, B = w transposed on packing) with the bias and
 * activation fused into the store. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "../ops/conv2d.h"
#include "../ops/gemm.h"
#include "pool.h"

static inline float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static float dot(const float *a, const float *b, int64_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float s = hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

#define GEMV_ROWS 8
/* rows shorter than this stay one at a time: the whole matrix is then one
 * sequential stream, where eight streams of a few KiB each are too short
 * for the hardware prefetchers (ResNet-50's 2048->1000 read cold) */
#define GEMV_MIN_IN 4096

/* y[r] = x . w[r] + bias[r] for GEMV_ROWS rows of w at once: eight
 * concurrent streams read memory at 1.7x the rate of one row at a time */
static void gemv_rows(const float *x, const float *w, int64_t in, const float *bias, float *y)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps();
    __m256 s3 = _mm256_setzero_ps(), s4 = _mm256_setzero_ps(), s5 = _mm256_setzero_ps();
    __m256 s6 = _mm256_setzero_ps(), s7 = _mm256_setzero_ps();
    const float *w0 = w, *w1 = w + in, *w2 = w + 2 * in, *w3 = w + 3 * in;
    const float *w4 = w + 4 * in, *w5 = w + 5 * in, *w6 = w + 6 * in, *w7 = w + 7 * in;
    int64_t t = 0;
    for (; t + 8 <= in; t += 8) {
        __m256 u = _mm256_loadu_ps(x + t);
        s0 = _mm256_fmadd_ps(u, _mm256_loadu_ps(w0 + t), s0);
        s1 = _mm256_fmadd_ps(u, _mm256_loadu_ps(w1 + t), s1);
        s2 = _mm256_fmadd_ps(u, _mm256_loadu_ps(w2 + t), s2);
        s3 = _mm256_fmadd_ps(u, _mm256_loadu_ps(w3 + t), s3);
        s4 = _mm256_fmadd_ps(u, _mm256_loadu_ps(w4 + t), s4);
        s5 = _mm256_fmadd_ps(u, _mm256_loadu_ps(w5 + t), s5);
        s6 = _mm256_fmadd_ps(u, _mm256_loadu_ps(w6 + t), s6);
        s7 = _mm256_fmadd_ps(u, _mm256_loadu_ps(w7 + t), s7);
    }
    float s[GEMV_ROWS] = {hsum(s0), hsum(s1), hsum(s2), hsum(s3),
                          hsum(s4), hsum(s5), hsum(s6), hsum(s7)};
    for (; t < in; t++)
        for (int r = 0; r < GEMV_ROWS; r++)
            s[r] += x[t] * w[r * in + t];
    for (int r = 0; r < GEMV_ROWS; r++)
        y[r] = s[r] + (bias ? bias[r] : 0.f);
}

#define LINEAR_STREAM_MAX 64
#define LINEAR_SLAB 2048      /* columns per slab: 4 x rows of it are 32 KB */

/* y[i][o] += x[i] . w[o] over one slab, for 4 x rows and 2 w rows at once:
 * each w load feeds 4 FMAs, each x load 2 */
static void slab_4x2(const float *x, int64_t ldx, const float *w, int64_t ldw, int64_t len,
                     float *y, int64_t ldy)
{
    __m256 a00 = _mm256_setzero_ps(), a01 = _mm256_setzero_ps(), a10 = _mm256_setzero_ps();
    __m256 a11 = _mm256_setzero_ps(), a20 = _mm256_setzero_ps(), a21 = _mm256_setzero_ps();
    __m256 a30 = _mm256_setzero_ps(), a31 = _mm256_setzero_ps();
    const float *x0 = x, *x1 = x + ldx, *x2 = x + 2 * ldx, *x3 = x + 3 * ldx;
    const float *w0 = w, *w1 = w + ldw;
    int64_t t = 0;
    for (; t + 8 <= len; t += 8) {
        __m256 v0 = _mm256_loadu_ps(w0 + t), v1 = _mm256_loadu_ps(w1 + t);
        __m256 u = _mm256_loadu_ps(x0 + t);
        a00 = _mm256_fmadd_ps(u, v0, a00);
        a01 = _mm256_fmadd_ps(u, v1, a01);
        u = _mm256_loadu_ps(x1 + t);
        a10 = _mm256_fmadd_ps(u, v0, a10);
        a11 = _mm256_fmadd_ps(u, v1, a11);
        u = _mm256_loadu_ps(x2 + t);
        a20 = _mm256_fmadd_ps(u, v0, a20);
        a21 = _mm256_fmadd_ps(u, v1, a21);
        u = _mm256_loadu_ps(x3 + t);
        a30 = _mm256_fmadd_ps(u, v0, a30);
        a31 = _mm256_fmadd_ps(u, v1, a31);
    }
    float s[4][2] = {{hsum(a00), hsum(a01)}, {hsum(a10), hsum(a11)},
                     {hsum(a20), hsum(a21)}, {hsum(a30), hsum(a31)}};
    for (; t < len; t++)
        for (int i = 0; i < 4; i++) {
            s[i][0] += x[i * ldx + t] * w0[t];
            s[i][1] += x[i * ldx + t] * w1[t];
        }
    for (int i = 0; i < 4; i++) {
        y[i * ldy] += s[i][0];
        y[i * ldy + 1] += s[i][1];
    }
}

typedef struct stream_job {
    int64_t n, in, out, pairs;
    int nt;
    const float *x, *w, *bias;
    float *y;
} stream_job;

/* Unit id of nt: a range of output rows, the columns slab by slab. */
static void stream_unit(void *ctx, int64_t u, int slot)
{
    (void)slot;
    const stream_job *jb = (const stream_job *)ctx;
    const int64_t n = jb->n, in = jb->in, out = jb->out, pairs = jb->pairs, id = u;
    const int nt = jb->nt;
    const float *x = jb->x, *w = jb->w, *bias = jb->bias;
    float *y = jb->y;
    int64_t o0 = 2 * (pairs * id / nt), o1 = 2 * (pairs * (id + 1) / nt);
    if (id == nt - 1)
        o1 = out;             /* an odd last row goes to the last unit */
    for (int64_t i = 0; i < n; i++)
        for (int64_t o = o0; o < o1; o++)
            y[i * out + o] = bias ? bias[o] : 0.f;
    for (int64_t c = 0; c < in; c += LINEAR_SLAB) {
        int64_t len = in - c < LINEAR_SLAB ? in - c : LINEAR_SLAB;
        int64_t o = o0;
        for (; o + 2 <= o1; o += 2) {
            int64_t i = 0;
            for (; i + 4 <= n; i += 4)
                slab_4x2(x + i * in + c, in, w + o * in + c, in, len, y + i * out + o, out);
            for (; i < n; i++) {
                y[i * out + o] += dot(x + i * in + c, w + o * in + c, len);
                y[i * out + o + 1] += dot(x + i * in + c, w + (o + 1) * in + c, len);
            }
        }
        for (; o < o1; o++)
            for (int64_t i = 0; i < n; i++)
                y[i * out + o] += dot(x + i * in + c, w + o * in + c, len);
    }
}

/* n in [4, LINEAR_STREAM_MAX]: each unit owns a range of output rows and
 * walks the columns slab by slab, so w is read from memory once per call */
static void linear_stream(int64_t n, int64_t in, int64_t out, const float *x, const float *w,
                          const float *bias, float *y, int threads)
{
    stream_job jb = {n, in, out, out / 2, threads, x, w, bias, y};
    cnn_pool_for(threads, threads, NULL, cnn_threads_steal(), stream_unit, &jb);
}

typedef struct gemv_job {
    int64_t n, in, out;
    const float *x, *w, *bias;
    float *y;
} gemv_job;

/* Output feature o, every row (short rows: plain dot products). */
static void dot_unit(void *ctx, int64_t o, int slot)
{
    (void)slot;
    const gemv_job *jb = (const gemv_job *)ctx;
    const int64_t in = jb->in, out = jb->out;
    for (int64_t i = 0; i < jb->n; i++)
        jb->y[i * out + o] = dot(jb->x + i * in, jb->w + o * in, in) + (jb->bias ? jb->bias[o] : 0.f);
}

/* Output features [b * GEMV_ROWS, +GEMV_ROWS), every row. */
static void gemv_unit(void *ctx, int64_t b, int slot)
{
    (void)slot;
    const gemv_job *jb = (const gemv_job *)ctx;
    const int64_t in = jb->in, out = jb->out, o = b * GEMV_ROWS;
    const float *x = jb->x, *w = jb->w, *bias = jb->bias;
    float *y = jb->y;
    for (int64_t i = 0; i < jb->n; i++) {
        if (o + GEMV_ROWS <= out)
            gemv_rows(x + i * in, w + o * in, in, bias ? bias + o : NULL, y + i * out + o);
        else
            for (int64_t r = o; r < out; r++)
                y[i * out + r] = dot(x + i * in, w + r * in, in) + (bias ? bias[r] : 0.f);
    }
}

cnn_status cnn_linear_f32_avx2(int64_t n, int64_t in, int64_t out, const float *x,
                               const float *w, const float *bias, cnn_epilogue ep,
                               float *y, int threads)
{
    if (n >= 4 && n <= LINEAR_STREAM_MAX) {
        linear_stream(n, in, out, x, w, bias, y, threads);
        if (ep.act != CNN_ACT_NONE)
            for (int64_t i = 0; i < n; i++)
                cnn_act_inplace(&ep, y + i * out, out);
        return CNN_OK;
    }
    if (n >= 4) {
        cnn_gemm_job j = cnn_gemm_job_plain();
        j.m = n;
        j.n = out;
        j.k = in;
        j.a = x;
        j.lda = in;
        j.trans_b = 1;
        j.b = w;
        j.ldb = in;
        j.c = y;
        j.ldc = out;
        j.bias_col = bias;
        j.ep = ep;
        return cnn_gemm_jobs_f32_avx2(&j, 1, threads);
    }
    gemv_job jb = {n, in, out, x, w, bias, y};
    if (in < GEMV_MIN_IN) {
        cnn_pool_for(threads, out, NULL, cnn_threads_steal(), dot_unit, &jb);
        if (ep.act != CNN_ACT_NONE)
            for (int64_t i = 0; i < n; i++)
                cnn_act_inplace(&ep, y + i * out, out);
        return CNN_OK;
    }
    int64_t blocks = (out + GEMV_ROWS - 1) / GEMV_ROWS;
    cnn_pool_for(threads, blocks, NULL, cnn_threads_steal(), gemv_unit, &jb);
    if (ep.act != CNN_ACT_NONE)
        for (int64_t i = 0; i < n; i++)
            cnn_act_inplace(&ep, y + i * out, out);
    return CNN_OK;
}
#endif
