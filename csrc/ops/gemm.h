/* Private GEMM engine shared by gemm, linear, conv2d and conv_transpose2d.
 *
 * A "job" is one C (M,N) = alpha * op(A) op(B) + beta * C with an optional
 * fused epilogue applied when a C tile is final:
 *     C = act(C + bias_row[i] + bias_col[j] + residual[i*ldr + j]).
 * B is either a plain row-major matrix (pack_b == NULL) or produced on the
 * fly by pack_b (conv2d's im2col writes straight into the packed panels).
 * Several jobs (images x groups) run in one OpenMP region.
 */
#ifndef CNN_OPS_GEMM_H
#define CNN_OPS_GEMM_H

#include "internal.h"

#define CNN_GEMM_NR 16  /* packed-B panel width */
#define CNN_GEMM_MR 6   /* packed-A panel height (rows of the micro-kernel) */
#define CNN_GEMM_KC 256 /* K block */

typedef struct cnn_gemm_job cnn_gemm_job;

/* Write rows [k0, k0+kc) x columns [n0, n0+nc) of op(B) into dst as
 * ceil(nc/16) panels, each kc rows of 16 floats (zero-padded past nc). */
typedef void (*cnn_pack_b_fn)(const cnn_gemm_job *job, int64_t k0, int64_t kc,
                              int64_t n0, int64_t nc, float *dst);

struct cnn_gemm_job {
    int64_t m, n, k;
    int trans_a, trans_b;
    const float *a; int64_t lda;    /* op(A) (M,K) */
    const float *a_packed;          /* or NULL: op(A) prepacked by
                                       cnn_gemm_pack_a (AVX2 runner only) */
    const float *b; int64_t ldb;    /* op(B) (K,N), used when pack_b == NULL */
    cnn_pack_b_fn pack_b;           /* or NULL */
    const void *ctx;                /* for pack_b */
    float alpha, beta;              /* beta == 0: C is write-only */
    float *c; int64_t ldc;
    const float *bias_row;          /* (M) or NULL */
    const float *bias_col;          /* (N) or NULL */
    const float *residual; int64_t ldr;  /* (M,N) or NULL */
    cnn_epilogue ep;
};

/* A job with alpha 1, beta 0, no epilogue; fill in the rest. */
static inline cnn_gemm_job cnn_gemm_job_plain(void)
{
    cnn_gemm_job j = {0};
    j.alpha = 1.f;
    j.ep.act = CNN_ACT_NONE;
    return j;
}

/* Scalar packer for a plain matrix B (pack_b == NULL jobs). */
void cnn_gemm_pack_b_plain(const cnn_gemm_job *job, int64_t k0, int64_t kc,
                           int64_t n0, int64_t nc, float *dst);

/* Prepacked op(A) (M,K): for each K block pc (kc = min(KC, K - pc)), the
 * ceil(M/MR) panels of kc x MR floats (k-major, zero rows past M) that the
 * AVX2 micro-kernel reads; block pc starts at pc * Mp, Mp = ceil(M/MR)*MR,
 * and panel ir (a multiple of MR) of it at pc * Mp + ir * kc. Packing once
 * (conv weights at plan time) removes the per-call A copy. */
int64_t cnn_gemm_packed_a_floats(int64_t m, int64_t k);  /* 0 on overflow */
void cnn_gemm_pack_a(int trans_a, int64_t m, int64_t k, const float *a, int64_t lda,
                     float *dst);

/* Run the jobs with a team of `threads`, by the platform table's runner.
 * Arguments are trusted (drivers validated them); CNN_ERR_OOM when the pack
 * buffers cannot be allocated. */
cnn_status cnn_gemm_jobs_f32(const cnn_gemm_job *jobs, int64_t njobs, int threads);
cnn_status cnn_gemm_jobs_f32_ref(const cnn_gemm_job *jobs, int64_t njobs, int threads);
#if defined(__x86_64__)
cnn_status cnn_gemm_jobs_f32_avx2(const cnn_gemm_job *jobs, int64_t njobs, int threads);
#endif

/* The C-tile epilogue (bias, residual, activation) on one row segment. */
static inline void cnn_gemm_epilogue_row(const cnn_gemm_job *j, int64_t i, int64_t j0,
                                         int64_t len)
{
    float *c = j->c + i * j->ldc + j0;
    float br = j->bias_row ? j->bias_row[i] : 0.f;
    const float *bc = j->bias_col ? j->bias_col + j0 : NULL;
    const float *r = j->residual ? j->residual + i * j->ldr + j0 : NULL;
    if (br != 0.f || bc || r) {
        for (int64_t t = 0; t < len; t++)
            c[t] += br + (bc ? bc[t] : 0.f) + (r ? r[t] : 0.f);
    }
    if (j->ep.act != CNN_ACT_NONE)
        cnn_act_inplace(&j->ep, c, len);
}

/* Peak of fused multiply-add throughput (GFLOP/s) with `threads` threads,
 * in the active ISA's vectors (ymm for AVX2, zmm for AVX512); 0 where
 * AVX2/FMA is absent. For benchmarks only. */
double cnn_fma_peak_gflops(int threads);
#if defined(__x86_64__)
double cnn_fma_peak_gflops_avx2(int threads);
double cnn_fma_peak_gflops_avx512(int threads);
#endif

#endif
