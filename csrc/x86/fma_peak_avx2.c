#pragma GCC target("avx2,fma")
/* The machine's fused multiply-add peak, measured: each thread runs chains
 * of independent ymm FMAs (enough to cover latency x ports) for a fixed
 * count, and the slowest thread's time sets the rate. For benchmarks. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "../ops/gemm.h"

#ifdef _OPENMP
#include <omp.h>
#endif

double cnn_fma_peak_gflops_avx2(int threads)
{
    const int64_t iters = 20000000;
    double worst = 0.0;
    float sink = 0.f;
    int team = 1;
    if (threads < 1)
        threads = 1;
#pragma omp parallel num_threads(threads) reduction(max : worst) reduction(+ : sink)
    {
#ifdef _OPENMP
#pragma omp single
        team = omp_get_num_threads();
#endif
        __m256 m = _mm256_set1_ps(0.9999999f), a = _mm256_set1_ps(1e-7f);
        __m256 x0 = _mm256_set1_ps(0.f), x1 = _mm256_set1_ps(1.f), x2 = _mm256_set1_ps(2.f);
        __m256 x3 = _mm256_set1_ps(3.f), x4 = _mm256_set1_ps(4.f), x5 = _mm256_set1_ps(5.f);
        __m256 x6 = _mm256_set1_ps(6.f), x7 = _mm256_set1_ps(7.f), x8 = _mm256_set1_ps(8.f);
        __m256 x9 = _mm256_set1_ps(9.f), x10 = _mm256_set1_ps(10.f), x11 = _mm256_set1_ps(11.f);
#ifdef _OPENMP
#pragma omp barrier
        double t0 = omp_get_wtime();
#endif
        for (int64_t it = 0; it < iters; it++) {
            /* 12 independent chains keep 2 FMA pipes x 4-5 cycles busy. */
            x0 = _mm256_fmadd_ps(x0, m, a);
            x1 = _mm256_fmadd_ps(x1, m, a);
            x2 = _mm256_fmadd_ps(x2, m, a);
            x3 = _mm256_fmadd_ps(x3, m, a);
            x4 = _mm256_fmadd_ps(x4, m, a);
            x5 = _mm256_fmadd_ps(x5, m, a);
            x6 = _mm256_fmadd_ps(x6, m, a);
            x7 = _mm256_fmadd_ps(x7, m, a);
            x8 = _mm256_fmadd_ps(x8, m, a);
            x9 = _mm256_fmadd_ps(x9, m, a);
            x10 = _mm256_fmadd_ps(x10, m, a);
            x11 = _mm256_fmadd_ps(x11, m, a);
        }
#ifdef _OPENMP
        double t = omp_get_wtime() - t0;
#else
        double t = 1.0;
#endif
        __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(x0, x1), _mm256_add_ps(x2, x3)),
                                 _mm256_add_ps(_mm256_add_ps(x4, x5), _mm256_add_ps(x6, x7)));
        s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(x8, x9), _mm256_add_ps(x10, x11)));
        float out[8];
        _mm256_storeu_ps(out, s);
        sink += out[0];
        worst = t;
    }
    if (sink == 12345.f)  /* keep the work observable */
        worst += 1e-9;
    /* 12 chains x 8 lanes x 2 flops per iteration, per thread. */
    return worst > 0 ? (double)iters * 12 * 16 * team / worst * 1e-9 : 0.0;
}
#endif
