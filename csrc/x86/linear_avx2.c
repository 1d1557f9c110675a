#pragma GCC target("avx2,fma")
/* linear on AVX2. Small batches (n < 4) are matrix-vector products bound by
 * reading w once: each thread takes a range of output rows and dots it with
 * every x row. Larger batches run the packed GEMM (x w^T, B = w transposed
 * on packing) with the bias and activation fused into the store. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "../ops/conv2d.h"
#include "../ops/gemm.h"

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

cnn_status cnn_linear_f32_avx2(int64_t n, int64_t in, int64_t out, const float *x,
                               const float *w, const float *bias, cnn_epilogue ep,
                               float *y, int threads)
{
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
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t o = 0; o < out; o++)
        for (int64_t i = 0; i < n; i++)
            y[i * out + o] = dot(x + i * in, w + o * in, in) + (bias ? bias[o] : 0.f);
    if (ep.act != CNN_ACT_NONE)
        for (int64_t i = 0; i < n; i++)
            cnn_act_inplace(&ep, y + i * out, out);
    return CNN_OK;
}
#endif
