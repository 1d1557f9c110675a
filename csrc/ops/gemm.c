/* GEMM: the cnn_gemm_f32 driver, the scalar reference (the oracle) and the
 * portable runner of the private job engine (csrc/ops/gemm.h). */
#include <string.h>

#include "gemm.h"
#include "pool.h"

typedef struct gref_job {
    int ta, tb;
    int64_t n, k, lda, ldb, ldc;
    float alpha, beta;
    const float *a, *b;
    float *c;
} gref_job;

/* Row i of C. */
static void gref_unit(void *ctx, int64_t i, int slot)
{
    (void)slot;
    const gref_job *jb = (const gref_job *)ctx;
    const int ta = jb->ta, tb = jb->tb;
    const int64_t n = jb->n, k = jb->k, lda = jb->lda, ldb = jb->ldb;
    const float alpha = jb->alpha, beta = jb->beta, *a = jb->a, *b = jb->b;
    float *c = jb->c;
    float *ci = c + i * jb->ldc;
    if (!tb) {
        for (int64_t j = 0; j < n; j++)
            ci[j] = beta != 0.f ? beta * ci[j] : 0.f;
        for (int64_t p = 0; p < k; p++) {
            float aip = alpha * (ta ? a[p * lda + i] : a[i * lda + p]);
            const float *bp = b + p * ldb;
            for (int64_t j = 0; j < n; j++)
                ci[j] += aip * bp[j];
        }
    } else {
        for (int64_t j = 0; j < n; j++) {
            const float *bj = b + j * ldb;
            float s = 0.f;
            for (int64_t p = 0; p < k; p++)
                s += (ta ? a[p * lda + i] : a[i * lda + p]) * bj[p];
            ci[j] = alpha * s + (beta != 0.f ? beta * ci[j] : 0.f);
        }
    }
}

/* C (M,N) = alpha op(A) op(B) + beta C, row by row in i-k-j order so the
 * inner loop streams rows of B and C (or dots rows of A and B^T). */
static void gemm_ref(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha,
                     const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                     float *c, int64_t ldc, int threads)
{
    gref_job jb = {ta, tb, n, k, lda, ldb, ldc, alpha, beta, a, b, c};
    cnn_pool_for(threads, m, NULL, cnn_threads_steal(), gref_unit, &jb);
}

/* A stored as rows x cols with leading dimension ld fits in int64 indexing. */
static int matrix_ok(int64_t rows, int64_t cols, int64_t ld)
{
    int64_t last;
    if (ld < (cols > 1 ? cols : 1))
        return 0;
    return cnn_mul_ok(rows - 1, ld, &last) && !__builtin_add_overflow(last, cols, &last);
}

cnn_status cnn_gemm_f32(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                        float alpha, const float *a, int64_t lda, const float *b,
                        int64_t ldb, float beta, float *c, int64_t ldc, int threads)
{
    if (m < 0 || n < 0 || k < 0)
        return CNN_ERR_SHAPE;
    if (m == 0 || n == 0)
        return CNN_OK;
    if (!c || (k > 0 && (!a || !b)))
        return CNN_ERR_ARG;
    if (!matrix_ok(m, n, ldc))
        return CNN_ERR_SHAPE;
    if (k > 0 && (!matrix_ok(trans_a ? k : m, trans_a ? m : k, lda) ||
                  !matrix_ok(trans_b ? n : k, trans_b ? k : n, ldb)))
        return CNN_ERR_SHAPE;
    if (threads < 1)
        threads = 1;
    if (alpha == 0.f)  /* BLAS: alpha == 0 leaves A and B unread */
        k = 0;
    /* without a vectorised engine the plain loops are the oracle */
    if (!cnn_plat()->gemm_fast) {
        gemm_ref(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, threads);
        return CNN_OK;
    }
    cnn_gemm_job j = cnn_gemm_job_plain();
    j.m = m;
    j.n = n;
    j.k = k;
    j.trans_a = trans_a != 0;
    j.trans_b = trans_b != 0;
    j.a = a; j.lda = lda;
    j.b = b; j.ldb = ldb;
    j.alpha = alpha;
    j.beta = beta;
    j.c = c; j.ldc = ldc;
    return cnn_gemm_jobs_f32(&j, 1, threads);
}

void cnn_gemm_pack_b_plain(const cnn_gemm_job *j, int64_t k0, int64_t kc, int64_t n0,
                           int64_t nc, float *dst)
{
    for (int64_t jr = 0; jr < nc; jr += CNN_GEMM_NR) {
        int64_t nr = nc - jr < CNN_GEMM_NR ? nc - jr : CNN_GEMM_NR;
        float *d = dst + jr * kc;
        if (j->trans_b) {
            for (int64_t t = 0; t < CNN_GEMM_NR; t++) {
                const float *src = j->b + (n0 + jr + t) * j->ldb + k0;
                for (int64_t p = 0; p < kc; p++)
                    d[p * CNN_GEMM_NR + t] = t < nr ? src[p] : 0.f;
            }
        } else {
            for (int64_t p = 0; p < kc; p++) {
                const float *src = j->b + (k0 + p) * j->ldb + n0 + jr;
                for (int64_t t = 0; t < CNN_GEMM_NR; t++)
                    d[p * CNN_GEMM_NR + t] = t < nr ? src[t] : 0.f;
            }
        }
    }
}

int64_t cnn_gemm_packed_a_floats(int64_t m, int64_t k)
{
    int64_t mp, t;
    if (m < 1 || k < 1)
        return 0;
    mp = (m + CNN_GEMM_MR - 1) / CNN_GEMM_MR * CNN_GEMM_MR;
    return cnn_mul_ok(mp, k, &t) ? t : 0;
}

void cnn_gemm_pack_a(int trans_a, int64_t m, int64_t k, const float *a, int64_t lda,
                     float *dst)
{
    const int64_t mp = (m + CNN_GEMM_MR - 1) / CNN_GEMM_MR * CNN_GEMM_MR;
    for (int64_t pc = 0; pc < k; pc += CNN_GEMM_KC) {
        const int64_t kc = k - pc < CNN_GEMM_KC ? k - pc : CNN_GEMM_KC;
        for (int64_t ir = 0; ir < mp; ir += CNN_GEMM_MR) {
            float *d = dst + pc * mp + ir * kc;
            for (int64_t q = 0; q < kc; q++)
                for (int64_t r = 0; r < CNN_GEMM_MR; r++) {
                    const int64_t i = ir + r, kk = pc + q;
                    d[q * CNN_GEMM_MR + r] =
                        i < m ? (trans_a ? a[kk * lda + i] : a[i * lda + kk]) : 0.f;
                }
        }
    }
}

typedef struct gjob_job {
    const cnn_gemm_job *j;
    cnn_pack_b_fn pack;
    float *buf;
    int64_t per;
} gjob_job;

/* Panel p of job j: op(B) packed into the slot's buffer, every row of A dotted against it. */
static void gjob_unit(void *ctx, int64_t p, int slot)
{
    const gjob_job *jb = (const gjob_job *)ctx;
    const cnn_gemm_job *j = jb->j;
    float *bp = jb->buf + slot * jb->per;
    int64_t n0 = p * CNN_GEMM_NR;
    int64_t nr = j->n - n0 < CNN_GEMM_NR ? j->n - n0 : CNN_GEMM_NR;
    if (j->k > 0)
        jb->pack(j, 0, j->k, n0, nr, bp);
    for (int64_t i = 0; i < j->m; i++) {
        float *ci = j->c + i * j->ldc + n0;
        for (int64_t t = 0; t < nr; t++) {
            float s = 0.f;
            for (int64_t kk = 0; kk < j->k; kk++)
                s += (j->trans_a ? j->a[kk * j->lda + i] : j->a[i * j->lda + kk]) *
                     bp[kk * CNN_GEMM_NR + t];
            ci[t] = j->alpha * s + (j->beta != 0.f ? j->beta * ci[t] : 0.f);
        }
        cnn_gemm_epilogue_row(j, i, n0, nr);
    }
}

/* Portable job runner: each 16-column panel of op(B) is packed once (so
 * pack_b jobs work too), then every row of A is dotted against it. */
cnn_status cnn_gemm_jobs_f32_ref(const cnn_gemm_job *jobs, int64_t njobs, int threads)
{
    int64_t maxk = 1;
    for (int64_t q = 0; q < njobs; q++)
        if (jobs[q].k > maxk)
            maxk = jobs[q].k;
    if (threads < 1)
        threads = 1;
    int64_t per = maxk * CNN_GEMM_NR;
    float *buf = cnn_alloc_floats(per * threads);
    if (!buf)
        return CNN_ERR_OOM;
    for (int64_t q = 0; q < njobs; q++) {
        const cnn_gemm_job *j = &jobs[q];
        int64_t panels = (j->n + CNN_GEMM_NR - 1) / CNN_GEMM_NR;
        cnn_pack_b_fn pack = j->pack_b ? j->pack_b : cnn_gemm_pack_b_plain;
        gjob_job jb = {j, pack, buf, per};
        cnn_pool_for(threads, panels, NULL, cnn_threads_steal(), gjob_unit, &jb);
    }
    free(buf);
    return CNN_OK;
}

cnn_status cnn_gemm_jobs_f32(const cnn_gemm_job *jobs, int64_t njobs, int threads)
{
    return cnn_plat()->gemm_jobs(jobs, njobs, threads);
}

double cnn_fma_peak_gflops(int threads)
{
    double (*peak)(int) = cnn_plat()->fma_peak_gflops;
    return peak ? peak(threads) : 0.0;
}
